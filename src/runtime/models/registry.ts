/**
 * Resolves model specs (`scripted`, `openai:<model>`, `anthropic:<model>`) to providers, creating
 * each once.
 */
import { checkParams, isWardenError, WardenError, type Workflow } from '../../core/index.ts';
import { modelRegistryArgs, registerModelArgs } from '../params.ts';
import { AnthropicProvider } from './anthropic.ts';
import { OpenAiProvider } from './openai.ts';
import { type ModelProvider, parseModelSpec } from './provider.ts';
import { ScriptedProvider } from './scripted.ts';

export class ModelRegistry {
  readonly #factories = new Map<string, () => ModelProvider>();
  readonly #providers = new Map<string, ModelProvider>();
  /** Spec used when neither the stage nor the workflow names a model. */
  readonly defaultSpec: string;

  /** @param defaultSpec @default process.env.WARDEN_MODEL ?? 'scripted' */
  constructor(defaultSpec?: string) {
    checkParams('new ModelRegistry', modelRegistryArgs, { defaultSpec });
    this.defaultSpec = defaultSpec ?? process.env.WARDEN_MODEL ?? 'scripted';
    this.#factories.set('scripted', () => new ScriptedProvider());
    this.#factories.set('openai', () => new OpenAiProvider());
    this.#factories.set('anthropic', () => new AnthropicProvider());
  }

  /** Adds or replaces a provider (e.g. a test double, or one configured with explicit options). */
  register(name: string, factory: () => ModelProvider): void {
    checkParams('ModelRegistry.register', registerModelArgs, { name, factory });
    this.#factories.set(name, factory);
    this.#providers.delete(name);
  }

  /**
   * Resolves the model of every `llm` stage of a workflow, so a missing provider configuration
   * (e.g. neither OPENAI_BASE_URL nor OPENAI_API_KEY) is CONFIG_INVALID before a run is created,
   * not a failed step after. Makes no network call.
   */
  checkWorkflow(workflow: Workflow): void {
    for (const stage of workflow.stages) {
      if (stage.agent?.kind !== 'llm') continue;
      try {
        this.resolve(stage.agent.model ?? workflow.model);
      } catch (error) {
        if (!isWardenError(error, 'CONFIG_INVALID')) throw error;
        throw new WardenError(
          'CONFIG_INVALID',
          `stage '${stage.name}' cannot reach its model: ${error.message}`,
          { cause: error, details: { stage: stage.name } },
        );
      }
    }
  }

  resolve(spec: string | undefined): { provider: ModelProvider; model: string; spec: string } {
    const effective = spec ?? this.defaultSpec;
    const { provider: name, model } = parseModelSpec(effective);
    let provider = this.#providers.get(name);
    if (!provider) {
      const factory = this.#factories.get(name);
      if (!factory) {
        throw new WardenError(
          'CONFIG_INVALID',
          `unknown model provider '${name}' in '${effective}' (known: ${[...this.#factories.keys()].join(', ')})`,
        );
      }
      provider = factory();
      this.#providers.set(name, provider);
    }
    return { provider, model, spec: effective };
  }
}
