export * from './plan-files.ts';
export * from './planner.ts';
export * from './python-text.ts';
export * from './run-layout.ts';
export * from './time-budget.ts';
