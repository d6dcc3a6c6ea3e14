/**
 * The rollback alarms' one definition, `infra/rollback-alarms.json`: read
 * here for every stage and, by `local_aws::cloudwatch`, for the rehearsal,
 * so that a rehearsed deployment is judged by exactly the alarms the stage
 * deploys. `rollbackAlarms` resolves it for one service and stage: the
 * stage's settings filled in, the service's business alarms added.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { StageConfig } from './config';
import { Service } from './registry';

/**
 * Where a metric comes from: the service's REST API stage (`AWS/ApiGateway`,
 * `ApiName` and `Stage`), Lambda's own metrics of the `live` alias, or the
 * service's EMF (the stage's namespace, `service`).
 */
export type MetricSource = 'api' | 'alias' | 'service';

/** One metric an alarm watches. */
export interface MetricRef {
  readonly source: MetricSource;
  /** `5XXError`, `Latency`, … for `api`; `Errors`, `Duration`, … for `alias`; the EMF metric name for `service`. */
  readonly name: string;
  /** `Sum`, `Average`, `SampleCount`, `Minimum`, `Maximum` or a percentile `pNN`. */
  readonly statistic: string;
}

/** A threshold: a number, or the stage setting that holds it. */
export type Threshold = number | { readonly stage: 'p99DurationMs' };

/** One alarm of the file: a metric, or an expression over named metrics. */
export interface AlarmSpec {
  readonly id: string;
  readonly description: string;
  readonly metric?: MetricRef;
  readonly expression?: string;
  readonly using?: Record<string, MetricRef>;
  readonly threshold: Threshold;
}

/** `infra/rollback-alarms.json`. */
export interface RollbackAlarmsFile {
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly comparison: string;
  readonly treatMissingData: string;
  readonly alarms: AlarmSpec[];
}

/** One alarm as a stage deploys it for one service. */
export interface AlarmDefinition {
  readonly id: string;
  readonly description: string;
  readonly metric?: MetricRef;
  readonly expression?: string;
  readonly using?: Record<string, MetricRef>;
  readonly threshold: number;
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly comparison: string;
  readonly treatMissingData: string;
}

/**
 * API Gateway's metric of 5xx answers (1 per 5xx answer, 0 per other, so
 * its Average is the rate): what customers see, whatever answered 500 —
 * the service (a successful invocation to Lambda, which no Lambda metric
 * counts), API Gateway for a function error (502) or timeout (504), or an
 * injected fault. The definition must watch it.
 */
export const SERVER_ERRORS = '5XXError';

/** A field of `rollback-alarms.json` that is wrong. */
export class AlarmSpecError extends Error {}

const STATISTICS = ['Sum', 'Average', 'SampleCount', 'Minimum', 'Maximum'];
const COMPARISONS = ['GreaterThanOrEqualToThreshold', 'GreaterThanThreshold', 'LessThanThreshold', 'LessThanOrEqualToThreshold'];
const MISSING = ['breaching', 'notBreaching', 'ignore', 'missing'];

function checkMetric(where: string, metric: MetricRef): void {
  if (!['api', 'alias', 'service'].includes(metric.source)) {
    throw new AlarmSpecError(`${where}.source: expected "api", "alias" or "service", got ${JSON.stringify(metric.source)}`);
  }
  if (typeof metric.name !== 'string' || metric.name.length === 0) {
    throw new AlarmSpecError(`${where}.name: expected a metric name`);
  }
  if (!STATISTICS.includes(metric.statistic) && !/^p\d{1,2}(\.\d{1,2})?$/.test(metric.statistic)) {
    throw new AlarmSpecError(`${where}.statistic: expected one of ${STATISTICS.join(', ')} or pNN, got ${JSON.stringify(metric.statistic)}`);
  }
}

/** Reads and checks the file (default: the workspace's). */
export function loadRollbackAlarms(file: string = path.resolve(__dirname, '..', 'rollback-alarms.json')): RollbackAlarmsFile {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as RollbackAlarmsFile;
  for (const key of ['periodSeconds', 'evaluationPeriods', 'datapointsToAlarm'] as const) {
    if (!Number.isInteger(spec[key]) || spec[key] < 1) {
      throw new AlarmSpecError(`${key}: expected a positive integer, got ${JSON.stringify(spec[key])}`);
    }
  }
  if (![10, 20, 30].includes(spec.periodSeconds) && spec.periodSeconds % 60 !== 0) {
    throw new AlarmSpecError('periodSeconds: expected 10, 20, 30 or a multiple of 60');
  }
  if (spec.evaluationPeriods * spec.periodSeconds > 86_400) {
    throw new AlarmSpecError('evaluationPeriods: expected evaluationPeriods × periodSeconds of at most one day');
  }
  if (spec.datapointsToAlarm > spec.evaluationPeriods) {
    throw new AlarmSpecError(`datapointsToAlarm: expected at most evaluationPeriods (${spec.evaluationPeriods})`);
  }
  if (!COMPARISONS.includes(spec.comparison)) {
    throw new AlarmSpecError(`comparison: expected one of ${COMPARISONS.join(', ')}`);
  }
  if (!MISSING.includes(spec.treatMissingData)) {
    throw new AlarmSpecError(`treatMissingData: expected one of ${MISSING.join(', ')}`);
  }
  for (const [i, alarm] of spec.alarms.entries()) {
    const where = `alarms[${i}]`;
    if (!/^[A-Za-z0-9]+$/.test(alarm.id ?? '')) {
      throw new AlarmSpecError(`${where}.id: expected letters and digits`);
    }
    if ((alarm.metric === undefined) === (alarm.expression === undefined)) {
      throw new AlarmSpecError(`${where}: expected exactly one of metric and expression`);
    }
    if (alarm.metric) {
      checkMetric(`${where}.metric`, alarm.metric);
    } else {
      const using = Object.entries(alarm.using ?? {});
      if (using.length === 0) {
        throw new AlarmSpecError(`${where}.using: an expression needs the metrics it names`);
      }
      for (const [id, metric] of using) {
        if (!/^[a-z][a-zA-Z0-9_]*$/.test(id)) {
          throw new AlarmSpecError(`${where}.using.${id}: expected an id starting with a lower-case letter`);
        }
        checkMetric(`${where}.using.${id}`, metric);
      }
    }
    const t = alarm.threshold;
    if (!(typeof t === 'number' && Number.isFinite(t)) && !(typeof t === 'object' && t?.stage === 'p99DurationMs')) {
      throw new AlarmSpecError(`${where}.threshold: expected a number or {"stage": "p99DurationMs"}`);
    }
  }
  const watches5xx = spec.alarms.some((alarm) => [alarm.metric, ...Object.values(alarm.expression ? alarm.using ?? {} : {})]
    .some((metric) => metric?.source === 'api' && metric.name === SERVER_ERRORS));
  if (!watches5xx) {
    throw new AlarmSpecError(`alarms: none watches the API's ${SERVER_ERRORS} metric, so a release answering 5xx would never be rolled back (Lambda counts those invocations as successes)`);
  }
  return spec;
}

/** The alarms that roll `service`'s deployments back in `stage`, in order: the file's, then the business alarms. */
export function rollbackAlarms(spec: RollbackAlarmsFile, service: Service, stage: StageConfig): AlarmDefinition[] {
  const common = {
    periodSeconds: spec.periodSeconds,
    evaluationPeriods: spec.evaluationPeriods,
    datapointsToAlarm: spec.datapointsToAlarm,
    comparison: spec.comparison,
    treatMissingData: spec.treatMissingData,
  };
  const defined = spec.alarms.map((alarm): AlarmDefinition => ({
    ...common,
    id: alarm.id,
    description: alarm.description,
    metric: alarm.metric,
    expression: alarm.expression,
    using: alarm.using,
    threshold: typeof alarm.threshold === 'number' ? alarm.threshold : stage[alarm.threshold.stage],
  }));
  const business = Object.entries(service.spec.alarms ?? {}).map(([name, threshold]): AlarmDefinition => ({
    ...common,
    id: name,
    description: `${name} (EMF) at or above ${threshold} in ${spec.periodSeconds} s`,
    metric: { source: 'service', name, statistic: 'Sum' },
    threshold,
  }));
  return [...defined, ...business];
}
