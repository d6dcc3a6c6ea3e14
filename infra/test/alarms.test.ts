/**
 * The rollback alarms' one definition: bad files fail with an error naming
 * the field, and a definition that would not see 5xx answers is refused
 * (the defect of issue 17: every alarm watched Lambda's function errors,
 * and a service answering 500 is a successful invocation).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AlarmSpecError, loadRollbackAlarms, rollbackAlarms, SERVER_ERRORS } from '../lib/alarms';
import { parse } from '../lib/config';
import { CDK_CONTEXT, workspaceRegistry } from './app';

const shipped = () => JSON.parse(JSON.stringify(loadRollbackAlarms()));

function load(spec: unknown) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'alarms-')), 'rollback-alarms.json');
  writeFileSync(file, JSON.stringify(spec));
  return loadRollbackAlarms(file);
}

test('the shipped definition loads and watches 5xx answers as a rate', () => {
  const spec = loadRollbackAlarms();
  const rate = spec.alarms.find((a) => a.metric?.name === SERVER_ERRORS);
  expect(rate?.metric).toEqual({ source: 'api', name: SERVER_ERRORS, statistic: 'Average' });
  // A 10 % canary of a fully broken version is 10 % of requests: over the threshold in one period.
  expect(typeof rate?.threshold === 'number' && rate.threshold <= 0.1).toBe(true);
  expect(spec.evaluationPeriods).toBe(1);
});

test('an alarm set that misses 5xx responses is refused', () => {
  const spec = shipped();
  spec.alarms = spec.alarms.filter((a: any) => a.metric?.name !== SERVER_ERRORS);
  expect(() => load(spec)).toThrow(AlarmSpecError);
  expect(() => load(spec)).toThrow(/none watches the API's 5XXError metric/);
});

test.each([
  ['a zero period', (s: any) => { s.periodSeconds = 0; }, /periodSeconds: expected a positive integer/],
  ['M over N', (s: any) => { s.datapointsToAlarm = 2; }, /datapointsToAlarm: expected at most evaluationPeriods/],
  ['an unknown comparison', (s: any) => { s.comparison = 'Above'; }, /comparison: expected one of/],
  ['an unknown missing-data mode', (s: any) => { s.treatMissingData = 'zero'; }, /treatMissingData: expected one of/],
  ['an unknown source', (s: any) => { s.alarms[1].metric.source = 'queue'; }, /alarms\[1\]\.metric\.source: expected "api", "alias" or "service"/],
  ['an unknown statistic', (s: any) => { s.alarms[1].metric.statistic = 'Median'; }, /alarms\[1\]\.metric\.statistic/],
  ['both metric and expression', (s: any) => { s.alarms[1].expression = 'm1'; }, /alarms\[1\]: expected exactly one of metric and expression/],
  ['a bad threshold', (s: any) => { s.alarms[1].threshold = 'one'; }, /alarms\[1\]\.threshold/],
  ['an expression without metrics', (s: any) => { s.alarms[2].using = {}; }, /alarms\[2\]\.using/],
])('%s: a clear error', (_, mutate, message) => {
  const spec = shipped();
  mutate(spec);
  expect(() => load(spec)).toThrow(message);
});

test('each service gets the file\'s alarms, the stage\'s p99 and its business alarms', () => {
  const spec = loadRollbackAlarms();
  const stages = parse(CDK_CONTEXT.fintech).stages;
  for (const service of workspaceRegistry().services) {
    for (const stage of stages) {
      const defined = rollbackAlarms(spec, service, stage);
      expect(defined.map((d) => d.id)).toEqual([...spec.alarms.map((a) => a.id), ...Object.keys(service.spec.alarms ?? {})]);
      expect(defined.find((d) => d.id === 'P99Duration')?.threshold).toBe(stage.p99DurationMs);
      for (const [name, threshold] of Object.entries(service.spec.alarms ?? {})) {
        expect(defined.find((d) => d.id === name)).toMatchObject({ metric: { source: 'service', name, statistic: 'Sum' }, threshold });
      }
    }
  }
});
