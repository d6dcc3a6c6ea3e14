/**
 * The CodeDeploy traffic hooks: `before-allow-traffic` and
 * `after-allow-traffic` from the traffic-gate package, shared by every
 * service's deployment group. Each may read its configuration and its own
 * machine client, look up the targets of the deployment groups it serves,
 * invoke those services' versions, and report to those groups — nothing else.
 */
import { Stack } from 'aws-cdk-lib';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { acknowledge, arnRef } from './nag';
import { Construct } from 'constructs';
import { grantConfigRead, RustLambda } from './function';
import { Deployment, HOOK_CONFIG_NAME } from './naming';
import { HOOK_BINARIES, Hooks } from './registry';

/** Props of the hooks. */
export interface TrafficHooksProps {
  readonly hooks: Hooks;
  readonly deployment: Deployment;
  readonly metricsNamespace: string;
}

/** Both hook functions. */
export class TrafficHooks extends Construct {
  /** BeforeAllowTraffic. */
  readonly before: RustLambda;
  /** AfterAllowTraffic. */
  readonly after: RustLambda;

  constructor(scope: Construct, id: string, props: TrafficHooksProps) {
    super(scope, id);
    const make = (bin: (typeof HOOK_BINARIES)[number], id: string) => new RustLambda(this, id, {
      functionName: `${props.deployment.app}-${bin}`,
      manifestPath: props.hooks.manifestPath,
      binaryName: bin,
      deploy: props.hooks.deploy,
      description: `CodeDeploy ${id} hook: smoke checks and Postman folders, verdict to CodeDeploy`,
      environment: {
        APP_NAME: props.deployment.app,
        STAGE: props.deployment.stage,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
      },
    });
    this.before = make('before-allow-traffic', 'BeforeAllowTraffic');
    this.after = make('after-allow-traffic', 'AfterAllowTraffic');
    for (const hook of this.all()) {
      grantConfigRead(Stack.of(this), hook.role, props.deployment.configPrefix(HOOK_CONFIG_NAME));
    }
  }

  /** Both hooks. */
  all(): RustLambda[] {
    return [this.before, this.after];
  }

  /**
   * Lets both hooks serve `group` (target lookup; the status report is granted
   * by the group itself) and check `fn`'s versions and alias.
   */
  serve(group: codedeploy.LambdaDeploymentGroup, fn: lambda.IFunction): void {
    for (const hook of this.all()) {
      hook.role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget'],
        resources: [group.deploymentGroupArn],
      }));
      hook.role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [`${fn.functionArn}:*`],
      }));
    }
    acknowledge(this.all().map((h) => h.role), {
      id: `AwsSolutions-IAM5[Resource::${arnRef(fn)}:*]`,
      reason: 'The hooks invoke the version under test (a new number each deployment) and the live alias: qualifiers of this one function only.'
    });
  }
}
