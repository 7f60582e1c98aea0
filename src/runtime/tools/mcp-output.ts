/**
 * An MCP `tools/call` result as a Warden {@link ToolOutput}. `structuredContent` (JSON) is
 * preferred when the server gives it; otherwise the content blocks become one text: text blocks
 * as they are, images, audio and binary resources as a one-line summary (their bytes would only
 * fill the model's context), resource links as their URI. Everything is bounded: text is cut
 * with a marker, and structured content over the bound falls back to the (cut) text.
 */
import { jsonBytes, truncateText } from '../../core/index.ts';
import type { ToolOutput } from './types.ts';

/** The default bound on one tool output: 256 KiB of UTF-8 (text) or JSON. */
export const MCP_MAX_OUTPUT_BYTES = 256 * 1024;

/** The parts of a `tools/call` result that are read (the SDK's type, loosely). */
export interface McpCallResult {
  readonly content?: readonly unknown[] | undefined;
  readonly structuredContent?: Record<string, unknown> | undefined;
  readonly isError?: boolean | undefined;
}

/** A result of the protocol version 2024-10-07, before content blocks. */
export interface McpLegacyCallResult {
  readonly toolResult: unknown;
}

export function mcpResultToOutput(
  result: McpCallResult | McpLegacyCallResult,
  maxBytes: number = MCP_MAX_OUTPUT_BYTES,
): ToolOutput {
  if ('toolResult' in result) {
    const value = result.toolResult;
    return {
      content: fitsAsJson(value, maxBytes)
        ? value
        : truncateText(JSON.stringify(value) ?? '', maxBytes),
    };
  }
  const flag = result.isError === true ? { is_error: true } : {};
  const structured = result.structuredContent;
  if (structured !== undefined && fitsAsJson(structured, maxBytes)) {
    return { content: structured, ...flag };
  }
  const text = (result.content ?? []).map(blockText).join('\n');
  return { content: truncateText(text, maxBytes), ...flag };
}

function fitsAsJson(value: unknown, maxBytes: number): boolean {
  try {
    return jsonBytes(value) <= maxBytes;
  } catch {
    return false; // not JSON (cannot come from the wire, but never trust a shape)
  }
}

/** Bytes of base64 data, without decoding it. */
function base64Bytes(data: unknown): number {
  if (typeof data !== 'string') return 0;
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((data.length * 3) / 4) - padding);
}

function blockText(block: unknown): string {
  if (typeof block !== 'object' || block === null) return '';
  const b = block as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  switch (b.type) {
    case 'text':
      return str(b.text);
    case 'image':
    case 'audio':
      return `[${b.type} ${str(b.mimeType) || 'of unknown type'}, ${base64Bytes(b.data)} bytes, not shown]`;
    case 'resource_link':
      return `[resource ${str(b.uri)}${b.name ? ` (${str(b.name)})` : ''}]`;
    case 'resource': {
      const r = (typeof b.resource === 'object' && b.resource !== null ? b.resource : {}) as Record<
        string,
        unknown
      >;
      if (typeof r.text === 'string') return r.text;
      return `[resource ${str(r.uri)}: ${str(r.mimeType) || 'binary'}, ${base64Bytes(r.blob)} bytes, not shown]`;
    }
    default:
      return `[${typeof b.type === 'string' ? b.type : 'unknown'} content, not shown]`;
  }
}
