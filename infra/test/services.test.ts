/**
 * The services stacks, per stage: deployment configs, alarms wired to
 * rollback and SNS, hook permissions, alias routing, API → alias, tracing,
 * log retention, encryption — for every registered service, read from the
 * real registry.
 */
import { execFileSync } from 'node:child_process';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { actions, CDK_CONTEXT, statements, synth, Synthesized, workspaceRegistry } from './app';
import { loadRollbackAlarms, rollbackAlarms, SERVER_ERRORS } from '../lib/alarms';

const registry = workspaceRegistry();
const expectedConfigs: Record<string, string> = {
  dev: 'CodeDeployDefault.LambdaAllAtOnce',
  staging: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
  prod: 'CodeDeployDefault.LambdaLinear10PercentEvery1Minute',
};

let synthesized: Synthesized;
beforeAll(() => {
  synthesized = synth();
});

function stage(name: string): Template {
  const template = synthesized.stages.get(name);
  if (!template) {
    throw new Error(`no stage ${name}`);
  }
  return template;
}

/** The logical id of the one resource of `type` whose properties match. */
function logicalId(template: Template, type: string, props: any): string {
  const found = Object.keys(template.findResources(type, { Properties: props }));
  expect(found).toHaveLength(1);
  return found[0];
}

test('the registry has services to deploy', () => {
  expect(registry.services.map((s) => s.name)).toEqual(expect.arrayContaining(['accounts', 'payments']));
});

describe.each(Object.keys(expectedConfigs))('stage %s', (name) => {
  const settings = (CDK_CONTEXT.fintech.stages as any[]).find((s) => s.name === name);

  test('one arm64 function per service plus the two hooks, traced, JSON logs', () => {
    const template = stage(name);
    const scheduled = registry.services.flatMap((s) => Object.keys(s.spec.schedules ?? {}));
    template.resourceCountIs('AWS::Lambda::Function', registry.services.length + 2 + scheduled.length);
    for (const fn of Object.values<any>(template.findResources('AWS::Lambda::Function'))) {
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Runtime).toBe('provided.al2023');
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
      expect(fn.Properties.LoggingConfig.LogFormat).toBe('JSON');
      expect(fn.Properties.Environment.Variables.STAGE).toBe(name);
    }
  });

  test.each(registry.services.map((s) => [s.name, s] as const))('%s: alias live, deployment group, rollback alarms', (service, spec) => {
    const template = stage(name);
    const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: service });
    const fn = template.findResources('AWS::Lambda::Function')[fnId];
    expect(fn.Properties.MemorySize).toBe(spec.deploy.memory);
    expect(fn.Properties.Timeout).toBe(spec.deploy.timeout);

    // Log retention from the registry.
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: `/aws/lambda/${service}`,
      RetentionInDays: spec.deploy.log_retention,
    });

    // The alias, pointing at a published version, updated by CodeDeploy.
    const aliases = template.findResources('AWS::Lambda::Alias', {
      Properties: { FunctionName: { Ref: fnId }, Name: 'live' },
    });
    expect(Object.keys(aliases)).toHaveLength(1);
    const [aliasId, alias] = Object.entries<any>(aliases)[0];
    const versionId = alias.Properties.FunctionVersion['Fn::GetAtt'][0];
    expect(template.findResources('AWS::Lambda::Version')[versionId].Properties.FunctionName).toEqual({ Ref: fnId });
    expect(alias.UpdatePolicy.CodeDeployLambdaAliasUpdate.ApplicationName).toBeDefined();

    // The deployment group: the stage's config, alarms, auto-rollback.
    const groupId = alias.UpdatePolicy.CodeDeployLambdaAliasUpdate.DeploymentGroupName.Ref;
    const group = template.findResources('AWS::CodeDeploy::DeploymentGroup')[groupId];
    expect(group.Properties.DeploymentConfigName).toBe(expectedConfigs[name]);
    expect(group.Properties.AutoRollbackConfiguration).toEqual({
      Enabled: true,
      Events: expect.arrayContaining(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST', 'DEPLOYMENT_STOP_ON_ALARM']),
    });
    expect(group.Properties.AlarmConfiguration.Enabled).toBe(true);
    const wired = group.Properties.AlarmConfiguration.Alarms.map((a: any) => a.Name.Ref);
    // Exactly the alarms of the one definition (rollback-alarms.json), which the rehearsal reads too.
    const definitions = rollbackAlarms(loadRollbackAlarms(), spec, settings);
    expect(wired).toHaveLength(definitions.length);

    // Every wired alarm: as defined, on this alias or this service's EMF metric, notifying the topic.
    const topicId = logicalId(template, 'AWS::SNS::Topic', { TopicName: `fintech-${name}-alarms` });
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    const described = wired.map((id: string) => alarms[id]);
    const aliasDimensions = [
      { Name: 'FunctionName', Value: { Ref: fnId } },
      { Name: 'Resource', Value: { 'Fn::Join': ['', [{ Ref: fnId }, ':live']] } },
    ];
    const metricOf = (ref: { source: string; name: string }) => {
      switch (ref.source) {
        case 'api':
          // The service's REST API stage, as customers reach it.
          // Literal names: a Ref to the API stage would close a cycle (alias → group → alarm → stage → alias).
          return { Namespace: 'AWS/ApiGateway', MetricName: ref.name, Dimensions: [{ Name: 'ApiName', Value: `fintech-${name}-${service}` }, { Name: 'Stage', Value: name }] };
        case 'alias':
          return { Namespace: 'AWS/Lambda', MetricName: ref.name, Dimensions: aliasDimensions };
        default:
          return { Namespace: CDK_CONTEXT.fintech.metricsNamespace, MetricName: ref.name, Dimensions: [{ Name: 'service', Value: service }] };
      }
    };
    const statisticOf = (statistic: string) => /^p\d/.test(statistic) ? { ExtendedStatistic: statistic } : { Statistic: statistic };
    for (const definition of definitions) {
      const alarm = described.find((a: any) => a.Properties.AlarmName === `fintech-${name}-${service}-${definition.id}`);
      expect(alarm).toBeDefined();
      const p = alarm.Properties;
      expect(p.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(p.TreatMissingData).toBe(definition.treatMissingData);
      expect(p.ComparisonOperator).toBe(definition.comparison);
      expect(p.Threshold).toBe(definition.threshold);
      expect(p.EvaluationPeriods).toBe(definition.evaluationPeriods);
      expect(p.DatapointsToAlarm).toBe(definition.datapointsToAlarm);
      if (definition.metric) {
        expect(p).toMatchObject({ ...metricOf(definition.metric), ...statisticOf(definition.metric.statistic), Period: definition.periodSeconds });
      } else {
        const queries = p.Metrics as any[];
        expect(queries.find((q) => q.ReturnData !== false).Expression).toBe(definition.expression);
        for (const [id, ref] of Object.entries(definition.using ?? {})) {
          const query = queries.find((q) => q.Id === id);
          expect(query.MetricStat).toMatchObject({ Metric: metricOf(ref), Stat: ref.statistic, Period: definition.periodSeconds });
        }
      }
    }
    // The defect of issue 17: Lambda counts a 5xx answer as a successful
    // invocation, so the group must watch the 5xx answers customers get.
    const serverErrors = described.filter((a: any) => a.Properties.MetricName === SERVER_ERRORS);
    expect(serverErrors).toHaveLength(1);
    expect(serverErrors[0].Properties.Namespace).toBe('AWS/ApiGateway');
    expect(serverErrors[0].Properties.Statistic).toBe('Average');
    const p99 = described.find((a: any) => a.Properties.AlarmName.endsWith('-P99Duration'));
    expect(p99.Properties.ExtendedStatistic).toBe('p99');
    expect(p99.Properties.Threshold).toBe(settings.p99DurationMs);
    for (const business of Object.keys(spec.spec.alarms ?? {})) {
      expect(described.some((a: any) => a.Properties.MetricName === business && a.Properties.Statistic === 'Sum')).toBe(true);
    }

    // The hooks are the group's pre- and post-traffic hooks.
    const hooks = alias.UpdatePolicy.CodeDeployLambdaAliasUpdate;
    const before = logicalId(template, 'AWS::Lambda::Function', { FunctionName: 'fintech-before-allow-traffic' });
    const after = logicalId(template, 'AWS::Lambda::Function', { FunctionName: 'fintech-after-allow-traffic' });
    expect(hooks.BeforeAllowTrafficHook).toEqual({ Ref: before });
    expect(hooks.AfterAllowTrafficHook).toEqual({ Ref: after });

    // API Gateway → the alias (not the function or $LATEST), traced, logged, throttled.
    const apiId = logicalId(template, 'AWS::ApiGateway::RestApi', { Name: `fintech-${name}-${service}` });
    const methods = Object.values<any>(template.findResources('AWS::ApiGateway::Method', { Properties: { RestApiId: { Ref: apiId } } }));
    expect(methods.length).toBeGreaterThan(0);
    for (const method of methods) {
      expect(JSON.stringify(method.Properties.Integration.Uri)).toContain(aliasId);
      expect(method.Properties.Integration.Type).toBe('AWS_PROXY');
    }
    template.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { Ref: aliasId },
      Principal: 'apigateway.amazonaws.com',
    });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      RestApiId: { Ref: apiId },
      StageName: name,
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: Match.arrayWith([Match.objectLike({
        ThrottlingRateLimit: settings.apiRateLimit,
        ThrottlingBurstLimit: settings.apiBurstLimit,
        LoggingLevel: 'ERROR',
      })]),
    });

    // Tables: on demand, PITR, KMS encryption, retained.
    for (const [logical, table] of Object.entries(spec.spec.tables ?? {})) {
      const tables = template.findResources('AWS::DynamoDB::Table', {
        Properties: { TableName: `fintech-${name}-${logical}` },
      });
      const [resource] = Object.values<any>(tables);
      expect(resource.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(resource.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      // SSEEnabled without a key: KMS with the AWS-managed aws/dynamodb key (not the AWS-owned default).
      expect(resource.Properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect(resource.DeletionPolicy).toBe('Retain');
      expect(resource.Properties.KeySchema[0].AttributeName).toBe(table.partition_key);
      if (table.ttl_attribute) {
        expect(resource.Properties.TimeToLiveSpecification).toEqual({ AttributeName: table.ttl_attribute, Enabled: true });
      }
    }

    // Configuration: every registry key under the service's SSM path.
    for (const key of Object.keys(spec.spec.config ?? {})) {
      template.hasResourceProperties('AWS::SSM::Parameter', { Name: `/fintech/${name}/${service}/${key}`, Type: 'String' });
    }
    // A dashboard.
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: `fintech-${name}-${service}` });
  });

  test('scheduled functions run on an EventBridge rate with their service\'s tables, config and secret', () => {
    const template = stage(name);
    const scheduled = registry.services.flatMap((s) => Object.entries(s.spec.schedules ?? {}).map(([binary, schedule]) => ({ service: s, binary, schedule })));
    expect(scheduled.map((s) => s.binary)).toContain('payments-sweeper');
    for (const { service, binary, schedule } of scheduled) {
      const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: binary });
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: `rate(${Math.max(1, Math.round(schedule.every_seconds / 60))} minute${Math.round(schedule.every_seconds / 60) > 1 ? 's' : ''})`,
        State: 'ENABLED',
        Targets: Match.arrayWith([Match.objectLike({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } })]),
      });
      const roleId = template.findResources('AWS::Lambda::Function')[fnId].Properties.Role['Fn::GetAtt'][0];
      const granted = statements(template.toJSON()).filter(({ resource }) => {
        const policy = template.findResources('AWS::IAM::Policy')[resource];
        return policy?.Properties.Roles.some((r: any) => r.Ref === roleId);
      }).map(({ statement }) => statement);
      expect(granted.flatMap(actions)).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:PutItem', 'ssm:GetParametersByPath', 'secretsmanager:GetSecretValue']));
      for (const logical of Object.keys(service.spec.tables ?? {})) {
        const tableId = logicalId(template, 'AWS::DynamoDB::Table', { TableName: `fintech-${name}-${logical}` });
        expect(JSON.stringify(granted)).toContain(tableId);
      }
    }
  });

  test('every registry index is a global secondary index of its table, all attributes projected', () => {
    const template = stage(name);
    for (const service of registry.services) {
      for (const [, table] of Object.entries(service.spec.tables ?? {})) {
        for (const [indexName, index] of Object.entries(table.indexes ?? {})) {
          const keys = [{ AttributeName: index.partition_key, KeyType: 'HASH' }];
          if (index.sort_key) {
            keys.push({ AttributeName: index.sort_key, KeyType: 'RANGE' });
          }
          template.hasResourceProperties('AWS::DynamoDB::Table', {
            GlobalSecondaryIndexes: Match.arrayWith([{ IndexName: indexName, KeySchema: keys, Projection: { ProjectionType: 'ALL' } }]),
          });
        }
      }
    }
  });

  test('table-valued config holds the physical table name; callee URLs point at the callee API', () => {
    const template = stage(name);
    for (const service of registry.services) {
      for (const [key, value] of Object.entries(service.spec.config ?? {})) {
        if (typeof value !== 'string') {
          template.hasResourceProperties('AWS::SSM::Parameter', { Name: `/fintech/${name}/${service.name}/${key}`, Value: `fintech-${name}-${value.table}` });
        }
      }
      for (const callee of service.spec.calls ?? []) {
        const apiId = logicalId(template, 'AWS::ApiGateway::RestApi', { Name: `fintech-${name}-${callee}` });
        const params = Object.values<any>(template.findResources('AWS::SSM::Parameter', { Properties: { Name: `/fintech/${name}/${service.name}/${callee}_url` } }));
        expect(params).toHaveLength(1);
        expect(JSON.stringify(params[0].Properties.Value)).toContain(apiId);
      }
    }
  });

  test('the hooks may report to, look up and invoke exactly what they serve', () => {
    const template = stage(name);
    const groups = Object.keys(template.findResources('AWS::CodeDeploy::DeploymentGroup'));
    expect(groups).toHaveLength(registry.services.length);
    for (const hook of ['before-allow-traffic', 'after-allow-traffic']) {
      const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: `fintech-${hook}` });
      const roleId = template.findResources('AWS::Lambda::Function')[fnId].Properties.Role['Fn::GetAtt'][0];
      const granted = statements(template.toJSON()).filter(({ resource }) => {
        const policy = template.findResources('AWS::IAM::Policy')[resource];
        return policy?.Properties.Roles.some((r: any) => r.Ref === roleId);
      }).map(({ statement }) => statement);
      const byAction = (action: string) => granted.filter((s) => actions(s).includes(action));
      // Report the verdict: on each deployment group, nothing else.
      const put = byAction('codedeploy:PutLifecycleEventHookExecutionStatus');
      const putResources = put.flatMap((s) => [s.Resource].flat()).map((r: any) => JSON.stringify(r));
      expect(putResources).toHaveLength(groups.length);
      expect(putResources.every((r) => groups.some((g) => r.includes(g)))).toBe(true);
      for (const group of groups) {
        expect(JSON.stringify(put)).toContain(group);
        expect(JSON.stringify(byAction('codedeploy:ListDeploymentTargets'))).toContain(group);
        expect(JSON.stringify(byAction('codedeploy:GetDeploymentTarget'))).toContain(group);
      }
      // Invoke each service's versions.
      for (const service of registry.services) {
        const serviceFn = logicalId(template, 'AWS::Lambda::Function', { FunctionName: service.name });
        expect(JSON.stringify(byAction('lambda:InvokeFunction'))).toContain(serviceFn);
      }
      // Nothing beyond its job.
      const allowed = new Set([
        'codedeploy:PutLifecycleEventHookExecutionStatus', 'codedeploy:ListDeploymentTargets', 'codedeploy:GetDeploymentTarget',
        'lambda:InvokeFunction', 'ssm:GetParametersByPath', 'secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret',
        'logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTraceSegments', 'xray:PutTelemetryRecords',
      ]);
      expect(granted.flatMap(actions).filter((a) => !allowed.has(a))).toEqual([]);
    }
  });

  test('every log group (functions, hooks, API access logs) has a retention; the alarm topic takes TLS only', () => {
    const template = stage(name);
    const groups = Object.values<any>(template.findResources('AWS::Logs::LogGroup'));
    // One per function (the services, their scheduled functions and both
    // hooks) and one API access log per service.
    const scheduled = registry.services.flatMap((s) => Object.keys(s.spec.schedules ?? {}));
    expect(groups).toHaveLength(2 * registry.services.length + scheduled.length + 2);
    for (const group of groups) {
      expect(group.Properties.RetentionInDays).toBeGreaterThan(0);
    }
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([Match.objectLike({
          Effect: 'Deny',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        })]),
      }),
    });
  });

  test('a user pool with every service\'s scopes, a customers\' client and the hooks\' machine client, whose secret only the hooks read', () => {
    const template = stage(name);
    template.resourceCountIs('AWS::Cognito::UserPool', 1);
    template.hasResourceProperties('AWS::Cognito::UserPool', { UserPoolTier: 'PLUS', MfaConfiguration: 'ON' });
    for (const service of registry.services.filter((s) => Object.keys(s.spec.scopes ?? {}).length > 0)) {
      template.hasResourceProperties('AWS::Cognito::UserPoolResourceServer', {
        Identifier: service.name,
        Scopes: Object.keys(service.spec.scopes!).map((scope) => Match.objectLike({ ScopeName: scope })),
      });
    }
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      ClientName: 'customers', AllowedOAuthFlows: ['code'], GenerateSecret: false,
    });
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      ClientName: 'traffic-gate', AllowedOAuthFlows: ['client_credentials'], GenerateSecret: true,
    });
    const secretId = logicalId(template, 'AWS::SecretsManager::Secret', { Name: `fintech/${name}/traffic-gate-client` });
    const readers = statements(template.toJSON())
      .filter(({ statement }) => actions(statement).includes('secretsmanager:GetSecretValue') && JSON.stringify(statement.Resource).includes(secretId))
      .flatMap(({ resource }) => template.findResources('AWS::IAM::Policy')[resource].Properties.Roles.map((r: any) => r.Ref));
    const hookRoles = ['before-allow-traffic', 'after-allow-traffic'].map((hook) => {
      const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: `fintech-${hook}` });
      return template.findResources('AWS::Lambda::Function')[fnId].Properties.Role['Fn::GetAtt'][0];
    });
    expect(readers.sort()).toEqual(hookRoles.sort());
    for (const service of registry.services) {
      const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: service.name });
      const vars = template.findResources('AWS::Lambda::Function')[fnId].Properties.Environment.Variables;
      expect(Object.keys(vars)).toEqual(expect.arrayContaining(['AUTH_ISSUER', 'AUTH_JWKS_URL', 'AUTH_CLIENT_IDS']));
    }
  });

  test('no API Gateway method but GET /health has AuthorizationType NONE; every other takes the pool\'s access tokens with its service\'s scopes', () => {
    const template = stage(name);
    const resources = template.findResources('AWS::ApiGateway::Resource');
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as any[];
    const open = methods.filter((m) => m.Properties.AuthorizationType === 'NONE');
    expect(open.length).toBe(registry.services.length);
    for (const method of open) {
      expect(method.Properties.HttpMethod).toBe('GET');
      expect(resources[method.Properties.ResourceId.Ref].Properties.PathPart).toBe('health');
    }
    const closed = methods.filter((m) => m.Properties.AuthorizationType !== 'NONE');
    expect(closed.length).toBeGreaterThanOrEqual(2 * registry.services.length);
    const authorizers = template.findResources('AWS::ApiGateway::Authorizer');
    const poolId = logicalId(template, 'AWS::Cognito::UserPool', {});
    for (const method of closed) {
      expect(method.Properties.AuthorizationType).toBe('COGNITO_USER_POOLS');
      const authorizer = authorizers[method.Properties.AuthorizerId.Ref].Properties;
      expect(authorizer.Type).toBe('COGNITO_USER_POOLS');
      expect(JSON.stringify(authorizer.ProviderARNs)).toContain(poolId);
      expect(authorizer.RestApiId).toEqual(method.Properties.RestApiId);
      // Scopes make the authorizer take access tokens; they are the API's own service's.
      const apiName = template.findResources('AWS::ApiGateway::RestApi')[method.Properties.RestApiId.Ref].Properties.Name;
      const service = registry.services.find((s) => apiName === `fintech-${name}-${s.name}`)!;
      expect(method.Properties.AuthorizationScopes.sort())
        .toEqual(Object.keys(service.spec.scopes ?? {}).map((scope) => `${service.name}/${scope}`).sort());
    }
    for (const status of ['401', '403', '404']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        StatusCode: status,
        ResponseParameters: Match.objectLike({ 'gatewayresponse.header.Content-Type': "'application/problem+json'" }),
      });
    }
  });

  test('the rehearsal evaluates exactly the alarms the stage deploys (cargo xtask alarms, from local_aws::cloudwatch::alarms)', () => {
    const template = stage(name);
    const rehearsed: any[] = JSON.parse(execFileSync('cargo', ['run', '-q', '-p', 'xtask', '--', 'alarms', '--stage', name], {
      cwd: registry.root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    }));
    const resources = template.toJSON().Resources as Record<string, any>;
    // The intrinsics the alarms use: a Ref to a function is its name; Fn::Join of those.
    const resolve = (value: any): any => {
      if (value?.Ref !== undefined) {
        const resource = resources[value.Ref];
        expect(resource?.Type).toBe('AWS::Lambda::Function');
        return resource.Properties.FunctionName;
      }
      if (value?.['Fn::Join'] !== undefined) {
        const [separator, parts] = value['Fn::Join'];
        return parts.map(resolve).join(separator);
      }
      if (Array.isArray(value)) {
        return value.map(resolve);
      }
      if (value !== null && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
      }
      return value;
    };
    const byName = (dimensions: any[] = []) => [...dimensions].sort((a, b) => a.Name.localeCompare(b.Name));
    const shape = (p: any) => ({
      AlarmName: p.AlarmName,
      Namespace: p.Namespace,
      MetricName: p.MetricName,
      Dimensions: p.Dimensions ? byName(p.Dimensions) : undefined,
      Statistic: p.Statistic,
      ExtendedStatistic: p.ExtendedStatistic,
      Period: p.Period,
      Threshold: p.Threshold,
      EvaluationPeriods: p.EvaluationPeriods,
      DatapointsToAlarm: p.DatapointsToAlarm,
      ComparisonOperator: p.ComparisonOperator,
      TreatMissingData: p.TreatMissingData,
      // Metric math: the expression, and each metric by the id it names.
      Expression: p.Metrics?.find((q: any) => q.ReturnData !== false)?.Expression,
      Using: p.Metrics?.filter((q: any) => q.MetricStat).map((q: any) => ({
        Id: q.Id,
        Metric: { ...q.MetricStat.Metric, Dimensions: byName(q.MetricStat.Metric.Dimensions) },
        Period: q.MetricStat.Period,
        Stat: q.MetricStat.Stat,
      })).sort((a: any, b: any) => a.Id.localeCompare(b.Id)),
    });
    const deployed = Object.values<any>(template.findResources('AWS::CodeDeploy::DeploymentGroup'))
      .flatMap((group) => group.Properties.AlarmConfiguration.Alarms.map((a: any) => resources[a.Name.Ref].Properties))
      .map((p) => resolve(shape(p)));
    expect(deployed.sort((a, b) => a.AlarmName.localeCompare(b.AlarmName)))
      .toEqual(rehearsed.map(shape).sort((a, b) => a.AlarmName.localeCompare(b.AlarmName)));
  });

  test('the customers\' client has no machine scope; each calling service has its own machine client for what it calls, never the back office, read by its functions only', () => {
    const template = stage(name);
    const clients = Object.values(template.findResources('AWS::Cognito::UserPoolClient')) as any[];
    const scopesOf = (clientName: string) => JSON.stringify(clients.find((c) => c.Properties.ClientName === clientName)!.Properties.AllowedOAuthScopes);
    expect(scopesOf('customers')).not.toContain('/service');
    expect(scopesOf('customers')).not.toContain('/back-office');
    // A scope is `<resource server>/<name>`, the server a reference.
    expect(scopesOf('customers')).toContain('"/write"');
    expect(scopesOf('traffic-gate')).toContain('"/service"');
    expect(scopesOf('traffic-gate')).toContain('"/back-office"');
    expect(clients.find((c) => c.Properties.ClientName === 'traffic-gate')!.Properties.ExplicitAuthFlows).toEqual(['ALLOW_REFRESH_TOKEN_AUTH']);
    for (const caller of registry.services.filter((s) => (s.spec.calls ?? []).length > 0)) {
      const client = clients.find((c) => c.Properties.ClientName === caller.name)!.Properties;
      expect(client.AllowedOAuthFlows).toEqual(['client_credentials']);
      expect(client.GenerateSecret).toBe(true);
      expect(client.ExplicitAuthFlows).toEqual(['ALLOW_REFRESH_TOKEN_AUTH']);
      const allowed = client.AllowedOAuthScopes.map((scope: any) => JSON.stringify(scope));
      expect(allowed.length).toBe(caller.spec.calls!.length);
      for (const callee of caller.spec.calls!) {
        expect(allowed.some((scope: string) => scope.includes(`Server${callee}`) && scope.includes('"/service"'))).toBe(true);
      }
      // A service acts for the customer it names: acting for no one is the back office's.
      expect(allowed.some((scope: string) => scope.includes('/back-office'))).toBe(false);
      const secretId = logicalId(template, 'AWS::SecretsManager::Secret', { Name: `fintech/${name}/${caller.name}-client` });
      const readers = statements(template.toJSON())
        .filter(({ statement }) => actions(statement).includes('secretsmanager:GetSecretValue') && JSON.stringify(statement.Resource).includes(secretId))
        .flatMap(({ resource }) => template.findResources('AWS::IAM::Policy')[resource].Properties.Roles.map((r: any) => r.Ref));
      const functions = [caller.name, ...Object.keys(caller.spec.schedules ?? {})].map((fn) => {
        const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: fn });
        return template.findResources('AWS::Lambda::Function')[fnId].Properties.Role['Fn::GetAtt'][0];
      });
      expect(readers.sort()).toEqual(functions.sort());
      template.hasResourceProperties('AWS::SSM::Parameter', { Name: `/fintech/${name}/${caller.name}/token_url` });
    }
    for (const service of registry.services) {
      const fnId = logicalId(template, 'AWS::Lambda::Function', { FunctionName: service.name });
      const ids = JSON.stringify(template.findResources('AWS::Lambda::Function')[fnId].Properties.Environment.Variables.AUTH_CLIENT_IDS);
      // Every client of the pool is accepted: customers, the hooks and each caller.
      for (const clientId of Object.keys(template.findResources('AWS::Cognito::UserPoolClient'))) {
        expect(ids).toContain(clientId);
      }
      // Only the machine clients' tokens may carry a service scope.
      const services = JSON.stringify(template.findResources('AWS::Lambda::Function')[fnId].Properties.Environment.Variables.AUTH_SERVICE_CLIENT_IDS);
      const customersId = logicalId(template, 'AWS::Cognito::UserPoolClient', { ClientName: 'customers' });
      expect(services).not.toContain(customersId);
      expect(services).toContain(logicalId(template, 'AWS::Cognito::UserPoolClient', { ClientName: 'traffic-gate' }));
    }
  });

  test('no IAM action in the services stack has a wildcard', () => {
    const wildcards = statements(stage(name).toJSON())
      .flatMap(({ resource, statement }) => actions(statement).filter((a) => a.includes('*')).map((a) => `${resource}: ${a}`));
    expect(wildcards).toEqual([]);
  });
});
