/**
 * One stage's services: the alarm topic, the secrets the services name, a
 * web ACL for their APIs, the traffic hooks, and one `FintechService` per
 * registered service, callees before callers.
 */
import { Stack, StackProps, Stage, StageProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { acknowledge, check } from './nag';
import { Construct } from 'constructs';
import { loadRollbackAlarms } from './alarms';
import { AppConfig, StageConfig } from './config';
import { TrafficHooks } from './hooks';
import { Deployment, HOOK_CONFIG_NAME } from './naming';
import { Registry, Service } from './registry';
import { FintechService } from './service';
import { CustomerIdentity } from './identity';

/** Props of a stage's services stack. */
export interface ServicesStackProps extends StackProps {
  readonly registry: Registry;
  readonly config: AppConfig;
  readonly stage: StageConfig;
}

/** Every service of one stage. */
export class ServicesStack extends Stack {
  /** The services by name. */
  readonly services: ReadonlyMap<string, FintechService>;
  /** The hooks. */
  readonly hooks: TrafficHooks;
  /** Where alarms notify. */
  readonly alarmTopic: sns.Topic;
  /** The stage's user pool. */
  readonly identity: CustomerIdentity;

  constructor(scope: Construct, id: string, props: ServicesStackProps) {
    super(scope, id, props);
    const { registry, config, stage } = props;
    const deployment = new Deployment(config.app, stage.name);

    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      topicName: `${config.app}-${stage.name}-alarms`,
      displayName: `${config.app} ${stage.name} rollback alarms`,
      enforceSSL: true,
    });
    if (stage.alarmEmail) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(stage.alarmEmail));
    }
    acknowledge(this.alarmTopic, {
      id: 'AwsSolutions-SNS2',
      reason: 'Alarm notifications carry alarm names and states, no customer data; CloudWatch cannot publish to a topic under the AWS-managed SNS key.',
    });

    const secrets = new Map<string, secretsmanager.Secret>();
    for (const service of registry.services) {
      const logical = service.spec.secret;
      if (!logical || secrets.has(logical)) {
        continue;
      }
      const keys = Object.keys(service.spec.secret_value ?? {});
      if (keys.length !== 1) {
        throw new Error(`${service.name}: secret_value must have exactly one key to generate in the cloud, has ${keys.length}`);
      }
      const secret = new secretsmanager.Secret(this, `Secret-${logical}`, {
        secretName: deployment.secretName(logical),
        description: `${logical}: generated at deployment; read by the services that name it and the traffic hooks`,
        generateSecretString: {
          secretStringTemplate: JSON.stringify({}),
          generateStringKey: keys[0],
          excludePunctuation: true,
          passwordLength: 48,
        },
      });
      acknowledge(secret, {
        id: 'AwsSolutions-SMG4',
        reason: 'Rotation needs a rotation function that updates both caller and callee; the services re-read the secret every secret_ttl_seconds, so a manual PutSecretValue rotates without a deployment (docs/runbook.md).',
      });
      secrets.set(logical, secret);
    }

    const webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      name: `${config.app}-${stage.name}-apis`,
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: `${config.app}-${stage.name}-apis`, sampledRequestsEnabled: true },
      rules: [
        managedRule('AWSManagedRulesCommonRuleSet', 1),
        managedRule('AWSManagedRulesKnownBadInputsRuleSet', 2),
        {
          name: 'RateLimitPerIp',
          priority: 3,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: stage.apiBurstLimit * 60, aggregateKeyType: 'IP' } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'RateLimitPerIp', sampledRequestsEnabled: true },
        },
      ],
    });

    const apiLogsRole = new iam.Role(this, 'ApiGatewayLogsRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    const apiAccount = new apigw.CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: apiLogsRole.roleArn });
    acknowledge(apiLogsRole, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: 'API Gateway execution logging is an account setting that requires this AWS-managed policy on the account\'s logging role.'
    });

    this.hooks = new TrafficHooks(this, 'TrafficHooks', {
      hooks: registry.hooks,
      deployment,
      metricsNamespace: config.metricsNamespace,
    });
    this.identity = new CustomerIdentity(this, 'Identity', {
      deployment,
      services: registry.services,
      callbackUrls: stage.authCallbackUrls ?? ['https://localhost/callback'],
    });
    for (const hook of this.hooks.all()) {
      this.identity.grantHooks(hook.role);
    }
    for (const [key, value] of [['api_stage', stage.name], ['payload_format', 'rest']]) {
      new ssm.StringParameter(this, `HookConfig-${key}`, {
        parameterName: `${deployment.configPrefix(HOOK_CONFIG_NAME)}${key}`,
        stringValue: value,
        description: `Traffic hooks: ${key}`,
      });
    }

    const rollbackAlarms = loadRollbackAlarms();
    const services = new Map<string, FintechService>();
    for (const service of calleesFirst(registry.services)) {
      const built = new FintechService(this, pascal(service.name), {
        service,
        deployment,
        stage,
        metricsNamespace: config.metricsNamespace,
        rollbackAlarms,
        hooks: this.hooks,
        alarmTopic: this.alarmTopic,
        secrets,
        callees: new Map((service.spec.calls ?? []).map((c) => [c, services.get(c)!])),
        webAcl,
        identity: this.identity,
      });
      built.api.node.addDependency(apiAccount);
      services.set(service.name, built);
    }
    this.services = services;
  }
}

/** A stage of the pipeline: one account and region, its services stack, checked by cdk-nag. */
export class ServicesStage extends Stage {
  /** The stack. */
  readonly stack: ServicesStack;
  /** The stage's settings. */
  readonly settings: StageConfig;

  constructor(scope: Construct, id: string, props: StageProps & { registry: Registry; config: AppConfig; stage: StageConfig }) {
    super(scope, id, props);
    this.settings = props.stage;
    this.stack = new ServicesStack(this, 'Services', {
      registry: props.registry,
      config: props.config,
      stage: props.stage,
      stackName: `${props.config.app}-${props.stage.name}-services`,
      description: `${props.config.app} services, stage ${props.stage.name}`,
      terminationProtection: true,
    });
    check(this);
  }
}

function managedRule(name: string, priority: number): wafv2.CfnWebACL.RuleProperty {
  return {
    name,
    priority,
    overrideAction: { none: {} },
    statement: { managedRuleGroupStatement: { vendorName: 'AWS', name } },
    visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: name, sampledRequestsEnabled: true },
  };
}

/** The services ordered so that each comes after the services it calls; a cycle is an error. */
export function calleesFirst(services: Service[]): Service[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const done = new Set<string>();
  const visiting = new Set<string>();
  const order: Service[] = [];
  const visit = (service: Service, path: string[]) => {
    if (done.has(service.name)) {
      return;
    }
    if (visiting.has(service.name)) {
      throw new Error(`services call each other in a cycle: ${[...path, service.name].join(' → ')}; one of them must read the other's URL from configuration instead`);
    }
    visiting.add(service.name);
    for (const callee of service.spec.calls ?? []) {
      visit(byName.get(callee)!, [...path, service.name]);
    }
    visiting.delete(service.name);
    done.add(service.name);
    order.push(service);
  };
  for (const service of services) {
    visit(service, []);
  }
  return order;
}

/** `card-payments` → `CardPayments`: construct ids. */
export function pascal(name: string): string {
  return name.split(/[-_]/).map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('');
}
