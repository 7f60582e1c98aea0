/**
 * The work every variant of the jeeves benchmark does: a two-agent loop (plan → critic → plan
 * → …) whose agents do nothing, run for as many steps as the benchmark asks. The same loop
 * exists twice: as a jeeves pipeline config (gRPC, `external` stages run by the client) and as
 * a Warden workflow of `noop` stages (run by the daemon's own step workers), so the two faces
 * run the same state machine: same stages, same routing, one durable step per agent turn.
 */

/** int32's largest value: the jeeves bounds are `int32` in the original, so this is "no bound". */
export const INT32_MAX = 2 ** 31 - 1;

export const PLAN = 'plan';
export const CRITIC = 'critic';

/**
 * The pipeline: `critic` routes back to `plan` while its output says `verdict: again`. Every
 * bound at int32's maximum and no edge limit, so the run never ends on its own within the
 * benchmark (it would after 2^31 − 1 hops); the client stops after the steps it wants.
 */
export function loopPipeline(name: string): Record<string, unknown> {
  return {
    name,
    agents: [
      { name: PLAN, stage_order: 1, default_next: CRITIC },
      {
        name: CRITIC,
        stage_order: 2,
        default_next: 'end',
        routing_rules: [{ condition: 'verdict', value: 'again', target: PLAN }],
      },
    ],
    max_iterations: INT32_MAX,
    max_llm_calls: INT32_MAX,
    max_agent_hops: INT32_MAX,
  };
}

/** What the trivial agent answers: `critic` always sends the loop round again. */
export function agentOutput(agent: string): Record<string, unknown> {
  return agent === CRITIC ? { verdict: 'again' } : { plan: 'ok' };
}

/**
 * The same loop as a Warden workflow of `noop` stages, run by the daemon itself. It ends after
 * exactly `steps` steps: `max_agent_hops` is the step count (the step after it is never issued),
 * so the wall time of the run is the time of those steps.
 */
export function loopWorkflow(name: string, steps: number): Record<string, unknown> {
  return {
    name,
    bounds: { max_iterations: INT32_MAX, max_llm_calls: INT32_MAX, max_agent_hops: steps },
    stages: [
      { name: PLAN, agent: { kind: 'noop', output: agentOutput(PLAN) }, default_next: CRITIC },
      {
        name: CRITIC,
        agent: { kind: 'noop', output: agentOutput(CRITIC) },
        routing: [{ when: { field: 'output.verdict', eq: 'again' }, next: PLAN }],
        default_next: 'end',
      },
    ],
  };
}
