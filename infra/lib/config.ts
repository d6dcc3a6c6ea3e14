/**
 * The deployment settings in `cdk.json` (context key `fintech`): the app
 * name, the pipeline's account and source, and one entry per stage — each
 * its own account and region, as in an AWS Organizations layout.
 */
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';

/** One deployment stage (dev, staging, prod). */
export interface StageConfig {
  readonly name: string;
  readonly account: string;
  readonly region: string;
  /** A predefined CodeDeploy Lambda config name, e.g. `LambdaCanary10Percent5Minutes`. */
  readonly deploymentConfig: string;
  /** A manual approval before this stage deploys. */
  readonly approval: boolean;
  /** The alias' p99 duration above which a deployment rolls back. */
  readonly p99DurationMs: number;
  /** API Gateway stage throttling. */
  readonly apiRateLimit: number;
  readonly apiBurstLimit: number;
  /** Where alarm notifications go, if anywhere besides the topic. */
  readonly alarmEmail?: string;
  /** Where the customers' app client may return users after sign-in (default `https://localhost/callback`). */
  readonly authCallbackUrls?: string[];
}

/** The pipeline's home and source. */
export interface PipelineConfig {
  readonly account: string;
  readonly region: string;
  /** A CodeConnections (CodeStar Connections) ARN for GitHub. */
  readonly connectionArn: string;
  /** `owner/repo`. */
  readonly repository: string;
  readonly branch: string;
}

/** The whole `fintech` context value. */
export interface AppConfig {
  readonly app: string;
  readonly metricsNamespace: string;
  readonly pipeline: PipelineConfig;
  readonly stages: StageConfig[];
}

const DEPLOYMENT_CONFIGS: Record<string, codedeploy.ILambdaDeploymentConfig> = {
  LambdaAllAtOnce: codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
  LambdaCanary10Percent5Minutes: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
  LambdaCanary10Percent10Minutes: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_10MINUTES,
  LambdaCanary10Percent15Minutes: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_15MINUTES,
  LambdaCanary10Percent30Minutes: codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_30MINUTES,
  LambdaLinear10PercentEvery1Minute: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE,
  LambdaLinear10PercentEvery2Minutes: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_2MINUTES,
  LambdaLinear10PercentEvery3Minutes: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_3MINUTES,
  LambdaLinear10PercentEvery10Minutes: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_10MINUTES,
};

/** An error naming the field of `cdk.json` that is wrong. */
export class ConfigError extends Error {}

/** The CodeDeploy config a stage names. */
export function deploymentConfig(stage: StageConfig): codedeploy.ILambdaDeploymentConfig {
  const config = DEPLOYMENT_CONFIGS[stage.deploymentConfig];
  if (!config) {
    throw new ConfigError(`fintech.stages[${stage.name}].deploymentConfig: expected one of ${Object.keys(DEPLOYMENT_CONFIGS).join(', ')}, got "${stage.deploymentConfig}"`);
  }
  return config;
}

/** Checks the context value and returns it typed; errors name the field. */
export function parse(value: unknown): AppConfig {
  if (!value || typeof value !== 'object') {
    throw new ConfigError('cdk.json context "fintech" is missing (app, metricsNamespace, pipeline, stages)');
  }
  const config = value as AppConfig;
  const text = (where: string, v: unknown, pattern?: RegExp) => {
    if (typeof v !== 'string' || v.length === 0 || (pattern && !pattern.test(v))) {
      throw new ConfigError(`${where}: expected ${pattern ? `a string matching ${pattern}` : 'a non-empty string'}, got ${JSON.stringify(v)}`);
    }
  };
  const positive = (where: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new ConfigError(`${where}: expected a positive integer, got ${JSON.stringify(v)}`);
    }
  };
  const account = /^\d{12}$/;
  text('fintech.app', config.app, /^[a-z][a-z0-9-]*$/);
  text('fintech.metricsNamespace', config.metricsNamespace);
  text('fintech.pipeline.account', config.pipeline?.account, account);
  text('fintech.pipeline.region', config.pipeline?.region);
  text('fintech.pipeline.connectionArn', config.pipeline?.connectionArn, /^arn:aws[a-z-]*:(codestar-connections|codeconnections):/);
  text('fintech.pipeline.repository', config.pipeline?.repository, /^[^/\s]+\/[^/\s]+$/);
  text('fintech.pipeline.branch', config.pipeline?.branch);
  if (!Array.isArray(config.stages) || config.stages.length === 0) {
    throw new ConfigError('fintech.stages: expected a non-empty list of stages');
  }
  for (const [i, stage] of config.stages.entries()) {
    const at = `fintech.stages[${i}]`;
    text(`${at}.name`, stage.name, /^[a-z][a-z0-9]*$/);
    text(`${at}.account`, stage.account, account);
    text(`${at}.region`, stage.region);
    deploymentConfig(stage);
    positive(`${at}.p99DurationMs`, stage.p99DurationMs);
    positive(`${at}.apiRateLimit`, stage.apiRateLimit);
    positive(`${at}.apiBurstLimit`, stage.apiBurstLimit);
    if (typeof stage.approval !== 'boolean') {
      throw new ConfigError(`${at}.approval: expected true or false, got ${JSON.stringify(stage.approval)}`);
    }
  }
  return config;
}
