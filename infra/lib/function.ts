/**
 * One way to make a Rust function: cargo-lambda-cdk's `RustFunction` for
 * arm64 on provided.al2023, active X-Ray tracing, JSON logs into its own log
 * group with the registry's retention, and a role that may write only there.
 * Services and hooks both come from here.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction } from 'cargo-lambda-cdk';
import { acknowledge, arnPrefix } from './nag';
import { Construct } from 'constructs';
import { DeploySpec } from './registry';

/** What differs between the functions. */
export interface RustLambdaProps {
  readonly functionName: string;
  readonly manifestPath: string;
  /** Set when the package has several binaries. */
  readonly binaryName?: string;
  readonly deploy: DeploySpec;
  readonly environment: Record<string, string>;
  readonly description: string;
}

/** A Rust Lambda function with its log group and least-privilege role. */
export class RustLambda extends Construct {
  /** The function. */
  readonly fn: lambda.Function;
  /** Its execution role. */
  readonly role: iam.Role;
  /** Its log group. */
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustLambdaProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: retention(props.deploy.log_retention),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.functionName}: logs to its own group, X-Ray, and what its construct grants`,
    });
    this.logGroup.grantWrite(this.role);
    this.fn = new RustFunction(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      manifestPath: props.manifestPath,
      binaryName: props.binaryName,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.deploy.memory,
      timeout: Duration.seconds(props.deploy.timeout),
      tracing: lambda.Tracing.ACTIVE,
      loggingFormat: lambda.LoggingFormat.JSON,
      logGroup: this.logGroup,
      role: this.role,
      environment: { ...functionEnv(props.deploy.env), ...props.environment },
    });
    acknowledge(this.role, {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions (Resource must be *).'
    });
  }
}

/** The deploy metadata's environment without the variables Lambda reserves (`AWS_*`; the log format is set by `loggingFormat`). */
export function functionEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('AWS_')));
}

/** CloudWatch Logs only accepts some retention periods; the registry's days must be one. */
export function retention(days: number): logs.RetentionDays {
  const match = Object.values(logs.RetentionDays).find((value) => value === days);
  if (match === undefined) {
    throw new Error(`log_retention = ${days}: CloudWatch Logs accepts ${Object.values(logs.RetentionDays).filter((v) => typeof v === 'number').join(', ')} days`);
  }
  return match as logs.RetentionDays;
}

/** `arn:…:ssm:…:parameter{prefix}` and everything under it: what `shared::config::load` reads by path. */
export function grantConfigRead(stack: Stack, role: iam.Role, prefix: string): void {
  const path = prefix.replace(/\/$/, '');
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['ssm:GetParametersByPath'],
    resources: [
      stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: path.slice(1) }),
      stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: `${path.slice(1)}/*` }),
    ],
  }));
  acknowledge(role, {
    id: `AwsSolutions-IAM5[Resource::${arnPrefix(stack, 'ssm')}:parameter${path}/*]`,
    reason: `GetParametersByPath reads every parameter under ${path}/ and only those: the path is the resource.`
  });
}
