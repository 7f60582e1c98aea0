/** Resolves model specs (`scripted`, `openai:<model>`) to providers, creating each once. */
import { checkParams, WardenError } from '../../core/index.ts';
import { modelRegistryArgs, registerModelArgs } from '../params.ts';
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
  }

  /** Adds or replaces a provider (e.g. a test double, or an Anthropic adapter). */
  register(name: string, factory: () => ModelProvider): void {
    checkParams('ModelRegistry.register', registerModelArgs, { name, factory });
    this.#factories.set(name, factory);
    this.#providers.delete(name);
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
