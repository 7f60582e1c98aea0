// commonjs.cjs — from CommonJS: Warden is an ES module package, and Node ≥ 22.12 loads it with
// require() (the module namespace: destructure the names). Top-level await is ESM-only.
const { buildWorkflow, Kernel, openSqliteStore } = require('warden');

async function main() {
  const store = await openSqliteStore({ file: ':memory:' });
  const kernel = new Kernel({ store });
  const hello = buildWorkflow({
    name: 'hello',
    stages: [{ name: 'gate', interrupt: { kind: 'checkpoint', prompt: 'Go on?' } }],
  });
  const run = await kernel.startRun({ workflow: hello });
  console.log(run.state, run.current_stage);
  kernel.close();
  await store.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
