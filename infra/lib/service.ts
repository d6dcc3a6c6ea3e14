/**
 * One registered service, deployed: its function with a version and the
 * `live` alias, a CodeDeploy deployment group shifting traffic by the
 * stage's config through the shared hooks and rolling back on alarms, its
 * tables, configuration and secret access, a REST API on the alias, alarms
 * and a dashboard. Every service in `services/` gets one; nothing here
 * names a service.
 */
import { Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { acknowledge, arnRef } from './nag';
import { Construct } from 'constructs';
import { MetricRef, rollbackAlarms, RollbackAlarmsFile } from './alarms';
import { deploymentConfig, StageConfig } from './config';
import { grantConfigRead, retention, RustLambda } from './function';
import { TrafficHooks } from './hooks';
import { Deployment, HOOK_CONFIG_NAME } from './naming';
import { Service } from './registry';
import { CustomerIdentity } from './identity';

/** What a service needs from its stack. */
export interface FintechServiceProps {
  readonly service: Service;
  readonly deployment: Deployment;
  readonly stage: StageConfig;
  readonly metricsNamespace: string;
  /** The rollback alarms' definition (`infra/rollback-alarms.json`). */
  readonly rollbackAlarms: RollbackAlarmsFile;
  readonly hooks: TrafficHooks;
  readonly alarmTopic: sns.ITopic;
  /** The stack's secrets by logical name. */
  readonly secrets: ReadonlyMap<string, secretsmanager.ISecret>;
  /** The services it calls, already built. */
  readonly callees: ReadonlyMap<string, FintechService>;
  /** The stack's web ACL, associated with the API stage. */
  readonly webAcl: wafv2.CfnWebACL;
  /** The stage's user pool, whose tokens the service verifies. */
  readonly identity: CustomerIdentity;
}

/** A deployed service. */
export class FintechService extends Construct {
  /** The function and its role. */
  readonly lambda: RustLambda;
  /** `live`: what API Gateway calls and CodeDeploy shifts. */
  readonly alias: lambda.Alias;
  /** The REST API in front of the alias. */
  readonly api: apigw.LambdaRestApi;
  /** Tables by logical name. */
  readonly tables: ReadonlyMap<string, dynamodb.Table>;
  /** The package's scheduled functions (the registry's `schedules`), by binary name. */
  readonly scheduled: ReadonlyMap<string, RustLambda>;
  /** Alarms that roll a deployment back. */
  readonly alarms: cloudwatch.Alarm[];
  /** Blue/green deployments of the alias. */
  readonly deploymentGroup: codedeploy.LambdaDeploymentGroup;
  /** The service's dashboard. */
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: FintechServiceProps) {
    super(scope, id);
    const { service, deployment, stage } = props;
    const name = service.name;
    if (service.spec.team) {
      // Cost allocation and ownership: every resource of the service names its team.
      Tags.of(this).add('team', service.spec.team);
    }

    this.lambda = new RustLambda(this, 'Lambda', {
      functionName: name,
      manifestPath: service.manifestPath,
      // The service's own binary, named as its package; others in the
      // package (a scheduled function's) are deployed on their own.
      binaryName: name,
      deploy: service.deploy,
      description: service.spec.route_prefix,
      environment: {
        APP_NAME: deployment.app,
        STAGE: deployment.stage,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        ...props.identity.environment(),
      },
    });
    const fn = this.lambda.fn;
    this.alias = new lambda.Alias(this, 'Live', { aliasName: 'live', version: fn.currentVersion });

    const tables = new Map<string, dynamodb.Table>();
    for (const [logical, spec] of Object.entries(service.spec.tables ?? {})) {
      const table = new dynamodb.Table(this, `Table-${logical}`, {
        tableName: deployment.tableName(logical),
        partitionKey: { name: spec.partition_key, type: dynamodb.AttributeType.STRING },
        sortKey: spec.sort_key ? { name: spec.sort_key, type: dynamodb.AttributeType.STRING } : undefined,
        timeToLiveAttribute: spec.ttl_attribute,
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      for (const [indexName, index] of Object.entries(spec.indexes ?? {})) {
        table.addGlobalSecondaryIndex({
          indexName,
          partitionKey: { name: index.partition_key, type: dynamodb.AttributeType.STRING },
          sortKey: index.sort_key ? { name: index.sort_key, type: dynamodb.AttributeType.STRING } : undefined,
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      table.grantReadWriteData(this.lambda.role);
      tables.set(logical, table);
    }
    this.tables = tables;
    this.acknowledgeIndexes(this.lambda.role, service, tables);

    if (service.spec.secret) {
      const secret = props.secrets.get(service.spec.secret);
      if (!secret) {
        throw new Error(`${name}: secret "${service.spec.secret}" is not created by the stack`);
      }
      secret.grantRead(this.lambda.role);
    }
    props.identity.grantCaller(name, this.lambda.role);

    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: retention(service.deploy.log_retention),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.api = new apigw.LambdaRestApi(this, 'Api', {
      restApiName: `${deployment.app}-${deployment.stage}-${name}`,
      description: `${name} (${service.spec.route_prefix}) → alias live`,
      handler: this.alias,
      // Methods are added below: every one behind the stage's user pool but /health.
      proxy: false,
      cloudWatchRole: false,
      endpointTypes: [apigw.EndpointType.REGIONAL],
      deployOptions: {
        stageName: deployment.stage,
        tracingEnabled: true,
        metricsEnabled: true,
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        throttlingRateLimit: stage.apiRateLimit,
        throttlingBurstLimit: stage.apiBurstLimit,
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
      },
    });
    new wafv2.CfnWebACLAssociation(this, 'WebAcl', {
      resourceArn: this.api.deploymentStage.stageArn,
      webAclArn: props.webAcl.attrArn,
    });
    this.authorize(props);
    acknowledge(this.api, { id: 'AwsSolutions-APIG2', reason: 'The service validates every body itself and answers 400 with a problem document naming the field; an API Gateway model would be a second schema to keep in step.' },
      { id: 'AwsSolutions-APIG4', reason: 'Only GET /health is open (the load balancer and smoke checks call it without a token); every other method has the stage user pool\'s Cognito authorizer.' },
      { id: 'AwsSolutions-COG4', reason: 'Only GET /health has no Cognito authorizer: see AwsSolutions-APIG4.' },);

    const config = new Map<string, string>();
    for (const [key, value] of Object.entries(service.spec.config ?? {})) {
      config.set(key, typeof value === 'string' ? value : deployment.tableName(value.table));
    }
    for (const [callee, running] of props.callees) {
      config.set(`${callee}_url`, running.url());
    }
    const prefix = deployment.configPrefix(name);
    for (const [key, value] of config) {
      new ssm.StringParameter(this, `Config-${key}`, {
        parameterName: `${prefix}${key}`,
        stringValue: value,
        description: `${name} configuration (registry key ${key})`,
      });
    }
    grantConfigRead(Stack.of(this), this.lambda.role, prefix);
    this.scheduled = this.createScheduled(props, tables, prefix);
    new ssm.StringParameter(this, 'LiveUrl', {
      parameterName: `${deployment.configPrefix(HOOK_CONFIG_NAME)}live_urls/${name}`,
      stringValue: this.url(),
      description: `AfterAllowTraffic checks ${name} through its API stage`,
    });

    this.alarms = this.createAlarms(props);
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
    }

    this.deploymentGroup = new codedeploy.LambdaDeploymentGroup(this, 'Deployment', {
      application: new codedeploy.LambdaApplication(this, 'Application', { applicationName: `${deployment.app}-${name}` }),
      deploymentGroupName: name,
      alias: this.alias,
      deploymentConfig: deploymentConfig(stage),
      alarms: this.alarms,
      preHook: props.hooks.before.fn,
      postHook: props.hooks.after.fn,
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: true },
    });
    props.hooks.serve(this.deploymentGroup, fn);
    acknowledge(this.deploymentGroup, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]',
      reason: 'AWSCodeDeployRoleForLambdaLimited is the AWS-maintained least-privilege policy for Lambda deployments (alias updates, alarm reads, hook invocation by name).',
    }, ...props.hooks.all().map((hook) => ({
      id: `AwsSolutions-IAM5[Resource::${arnRef(hook.fn)}:*]`,
      reason: 'CodeDeploy invokes the hook functions (any version); CDK grants invoke on their qualifiers, of these two functions only.',
    })));

    this.dashboard = this.createDashboard(props);
  }

  /**
   * Each scheduled binary of the package (the payments sweeper) as its own
   * function on an EventBridge rate: the service's tables, configuration and
   * secret, and an errors alarm to the topic. It is not deployed through the
   * alias: it finishes what requests left, whichever version made them.
   */
  private createScheduled(props: FintechServiceProps, tables: ReadonlyMap<string, dynamodb.Table>, prefix: string): Map<string, RustLambda> {
    const { service, deployment } = props;
    const scheduled = new Map<string, RustLambda>();
    for (const [binary, schedule] of Object.entries(service.spec.schedules ?? {})) {
      const job = new RustLambda(this, `Scheduled-${binary}`, {
        functionName: binary,
        manifestPath: service.manifestPath,
        binaryName: binary,
        deploy: service.deploy,
        description: `${service.name}: scheduled every ${schedule.every_seconds} s`,
        environment: {
          APP_NAME: deployment.app,
          STAGE: deployment.stage,
          POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
          ...props.identity.environment(),
        },
      });
      props.identity.grantCaller(service.name, job.role);
      for (const table of tables.values()) {
        table.grantReadWriteData(job.role);
      }
      this.acknowledgeIndexes(job.role, service, tables);
      if (service.spec.secret) {
        props.secrets.get(service.spec.secret)?.grantRead(job.role);
      }
      grantConfigRead(Stack.of(this), job.role, prefix);
      new events.Rule(this, `Schedule-${binary}`, {
        description: `${binary} every ${schedule.every_seconds} s`,
        // EventBridge rates are whole minutes, one at least.
        schedule: events.Schedule.rate(Duration.minutes(Math.max(1, Math.round(schedule.every_seconds / 60)))),
        // A missed run is made up by the next one.
        targets: [new eventTargets.LambdaFunction(job.fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
      });
      new cloudwatch.Alarm(this, `ScheduledErrors-${binary}`, {
        alarmName: `${deployment.app}-${deployment.stage}-${binary}-errors`,
        alarmDescription: `${binary} failed (its work waits for the next run; PaymentsStuck-style business alarms say when that matters)`,
        metric: job.fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
      scheduled.set(binary, job);
    }
    return scheduled;
  }

  /**
   * Every method behind the stage's user pool (a Cognito authorizer that
   * takes an access token with any of the service's scopes; the service then
   * checks the route's own scope, the owner and the rest), except `GET
   * /health`. The gateway's own refusals are problem+json, as the service's are.
   */
  private authorize(props: FintechServiceProps): void {
    const scopes = props.identity.scopesOf.get(props.service.name) ?? [];
    if (scopes.length === 0) {
      throw new Error(`${props.service.name}: declares no scopes, so no token could reach it through the gateway`);
    }
    const authorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'Authorizer', {
      cognitoUserPools: [props.identity.pool],
      authorizerName: `${props.deployment.app}-${props.deployment.stage}-${props.service.name}`,
      identitySource: apigw.IdentitySource.header('Authorization'),
      resultsCacheTtl: Duration.minutes(5),
    });
    const closed: apigw.MethodOptions = {
      authorizer,
      authorizationType: apigw.AuthorizationType.COGNITO,
      // With scopes, the authorizer takes access tokens (the scope claim); without, ID tokens only.
      authorizationScopes: scopes,
    };
    this.api.root.addMethod('ANY', undefined, closed);
    this.api.root.addResource('{proxy+}').addMethod('ANY', undefined, closed);
    this.api.root.addResource('health').addMethod('GET', undefined, { authorizationType: apigw.AuthorizationType.NONE });
    for (const [type, status, title] of [
      [apigw.ResponseType.UNAUTHORIZED, '401', 'Unauthorized'],
      [apigw.ResponseType.ACCESS_DENIED, '403', 'Forbidden'],
      // A method the API does not have (POST /health): REST APIs say 403
      // "Missing Authentication Token"; it is no such route.
      [apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, '404', 'Not Found'],
    ] as const) {
      this.api.addGatewayResponse(`Gateway${status}`, {
        type,
        statusCode: status,
        responseHeaders: {
          'Content-Type': "'application/problem+json'",
          'WWW-Authenticate': "'Bearer'",
        },
        templates: {
          'application/json': JSON.stringify({
            type: `urn:problem:${title.toLowerCase()}`,
            title,
            status: Number(status),
            detail: '$context.error.message',
          }),
        },
      });
    }
  }

  /** CDK grants a table's indexes as `<table>/index/*`; each such table's indexes are exactly the registry's. */
  private acknowledgeIndexes(role: iam.IRole, service: Service, tables: ReadonlyMap<string, dynamodb.Table>): void {
    for (const [logical, table] of tables) {
      const indexes = Object.keys(service.spec.tables?.[logical]?.indexes ?? {});
      if (indexes.length > 0) {
        acknowledge(role, {
          id: `AwsSolutions-IAM5[Resource::${arnRef(table)}/index/*]`,
          reason: `The grant covers the table's own indexes, which are exactly the registry's (${indexes.join(', ')}).`,
        });
      }
    }
  }

  /** The base URL of the API stage (the service's routes include its prefix). */
  url(): string {
    const stack = Stack.of(this);
    return `https://${this.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${this.api.deploymentStage.stageName}`;
  }

  /** The rollback alarms of `rollback-alarms.json` (`alarms.ts`), resolved for this service and stage. */
  private createAlarms(props: FintechServiceProps): cloudwatch.Alarm[] {
    const name = props.service.name;
    const period = Duration.seconds(props.rollbackAlarms.periodSeconds);
    const metric = (ref: MetricRef): cloudwatch.IMetric => {
      switch (ref.source) {
        case 'api':
          // The stage's name as a literal, not a Ref to the stage: the
          // alias' update policy names the group, the group its alarms, and
          // the stage hangs on the alias through its methods (a cycle).
          return new cloudwatch.Metric({
            namespace: 'AWS/ApiGateway',
            metricName: ref.name,
            dimensionsMap: { ApiName: this.api.restApiName, Stage: props.deployment.stage },
            period,
            statistic: ref.statistic,
          });
        case 'alias':
          return this.alias.metric(ref.name, { period, statistic: ref.statistic });
        case 'service':
          return this.businessMetric(props, ref.name).with({ statistic: ref.statistic, period });
      }
    };
    return rollbackAlarms(props.rollbackAlarms, props.service, props.stage).map((definition) => new cloudwatch.Alarm(this, definition.id, {
      alarmName: `${props.deployment.app}-${props.deployment.stage}-${name}-${definition.id}`,
      alarmDescription: `${name}: ${definition.description}. Rolls back a deployment in progress.`,
      metric: definition.metric
        ? metric(definition.metric)
        : new cloudwatch.MathExpression({
          expression: definition.expression!,
          usingMetrics: Object.fromEntries(Object.entries(definition.using ?? {}).map(([id, ref]) => [id, metric(ref)])),
          period,
          label: definition.description,
        }),
      threshold: definition.threshold,
      evaluationPeriods: definition.evaluationPeriods,
      datapointsToAlarm: definition.datapointsToAlarm,
      comparisonOperator: definition.comparison as cloudwatch.ComparisonOperator,
      treatMissingData: definition.treatMissingData as cloudwatch.TreatMissingData,
    }));
  }

  private businessMetric(props: FintechServiceProps, metricName: string, dimensions: Record<string, string> = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: props.metricsNamespace,
      metricName,
      dimensionsMap: { service: props.service.name, ...dimensions },
      statistic: 'Sum',
      period: Duration.minutes(1),
    });
  }

  private createDashboard(props: FintechServiceProps): cloudwatch.Dashboard {
    const name = props.service.name;
    const minute = Duration.minutes(1);
    const graph = (title: string, left: cloudwatch.IMetric[]) => new cloudwatch.GraphWidget({ title, left, width: 8 });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${props.deployment.app}-${props.deployment.stage}-${name}`,
    });
    dashboard.addWidgets(
      graph('Invocations', [this.alias.metricInvocations({ period: minute, statistic: 'Sum' })]),
      graph('Errors', [this.alias.metricErrors({ period: minute, statistic: 'Sum' })]),
      graph('Duration p50 / p99', [
        this.alias.metricDuration({ period: minute, statistic: 'p50' }),
        this.alias.metricDuration({ period: minute, statistic: 'p99' }),
      ]),
    );
    dashboard.addWidgets(
      graph('Throttles', [this.alias.metricThrottles({ period: minute, statistic: 'Sum' })]),
      graph('Cold starts', [this.businessMetric(props, 'ColdStart', { function_name: name })]),
      graph('Traffic hooks: verdicts / failed / undelivered', [
        this.businessMetric(props, 'HookFailed').with({ statistic: 'SampleCount', label: 'verdicts' }),
        this.businessMetric(props, 'HookFailed').with({ label: 'failed verdicts' }),
        this.businessMetric(props, 'HookVerdictUndelivered').with({ label: 'undelivered verdicts' }),
      ]),
      graph('Traffic hooks: failed checks / duration', [
        this.businessMetric(props, 'HookChecksFailed'),
        new cloudwatch.Metric({
          namespace: props.metricsNamespace,
          metricName: 'HookDurationMs',
          dimensionsMap: { service: name },
          statistic: 'Maximum',
          period: minute,
        }),
      ]),
    );
    dashboard.addWidgets(
      graph('API 4xx / 5xx', [this.api.metricClientError({ period: minute }), this.api.metricServerError({ period: minute })]),
      graph('API latency p99', [this.api.metricLatency({ period: minute, statistic: 'p99' })]),
      new cloudwatch.AlarmStatusWidget({ title: 'Rollback alarms', alarms: this.alarms, width: 8 }),
    );
    return dashboard;
  }
}
