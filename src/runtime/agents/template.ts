/**
 * Prompt templates: `{{input.topic}}`, `{{outputs.draft.text}}`, `{{state.x}}`,
 * `{{metadata.x}}`, `{{interrupt.text}}` (the last interrupt response). Objects render as JSON;
 * missing values render as an empty string.
 */
import { type Envelope, readPath } from '../../core/index.ts';

export function renderTemplate(template: string, envelope: Readonly<Envelope>): string {
  const roots: Record<string, unknown> = {
    input: envelope.input,
    outputs: envelope.outputs,
    state: envelope.state,
    metadata: envelope.metadata,
    interrupt: envelope.last_interrupt?.response,
  };
  return template.replace(/\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g, (_, path: string) => {
    const dot = path.indexOf('.');
    const root = roots[dot === -1 ? path : path.slice(0, dot)];
    const value = dot === -1 ? root : readPath(root, path.slice(dot + 1));
    if (value === undefined || value === null) return '';
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}
