/**
 * Bad settings and registries fail with an error naming the field; names
 * follow `shared::naming`; a service added to the registry is deployed with
 * no edit under infra/.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { calleesFirst } from '../lib/services-stack';
import { ConfigError, parse } from '../lib/config';
import { Deployment } from '../lib/naming';
import { fromMetadata, Registry, RegistryError, Service } from '../lib/registry';
import { CDK_CONTEXT, synth, workspaceRegistry } from './app';

const valid = () => JSON.parse(JSON.stringify(CDK_CONTEXT.fintech));

test('cdk.json parses', () => {
  expect(parse(valid()).stages.map((s) => s.name)).toEqual(['dev', 'staging', 'prod']);
});

test.each([
  ['missing', (_c: any) => undefined, /context "fintech" is missing/],
  ['bad account', (c: any) => { c.stages[1].account = '12345'; return c; }, /fintech\.stages\[1\]\.account: expected a string matching/],
  ['unknown deployment config', (c: any) => { c.stages[2].deploymentConfig = 'Linear50'; return c; }, /fintech\.stages\[prod\]\.deploymentConfig: expected one of .*LambdaAllAtOnce/],
  ['not a connection ARN', (c: any) => { c.pipeline.connectionArn = 'github-token'; return c; }, /fintech\.pipeline\.connectionArn/],
  ['approval not boolean', (c: any) => { c.stages[0].approval = 'yes'; return c; }, /fintech\.stages\[0\]\.approval: expected true or false, got "yes"/],
  ['no stages', (c: any) => { c.stages = []; return c; }, /fintech\.stages: expected a non-empty list/],
  ['zero p99', (c: any) => { c.stages[0].p99DurationMs = 0; return c; }, /fintech\.stages\[0\]\.p99DurationMs: expected a positive integer, got 0/],
])('cdk.json %s: a clear error', (_, mutate, message) => {
  expect(() => parse(mutate(valid()))).toThrow(ConfigError);
  expect(() => parse(mutate(valid()))).toThrow(message);
});

test('names follow shared::naming (same examples as its Rust unit test)', () => {
  const d = new Deployment('fintech', 'dev');
  expect(d.configPrefix('accounts')).toBe('/fintech/dev/accounts/');
  expect(d.tableName('accounts')).toBe('fintech-dev-accounts');
  expect(d.secretName('service-api-key')).toBe('fintech/dev/service-api-key');
});

const pkg = (name: string, service: object | undefined, deploy: object | null = { memory: 128, timeout: 3, log_retention: 7, env: {} }) => ({
  name,
  manifest_path: `/w/services/${name}/Cargo.toml`,
  targets: [{ name, kind: ['lib'] }],
  metadata: { service, lambda: deploy ? { deploy } : undefined },
});
const gate = { name: 'traffic-gate', manifest_path: '/w/hooks/traffic-gate/Cargo.toml', targets: [{ name: 'before-allow-traffic', kind: ['bin'] }, { name: 'after-allow-traffic', kind: ['bin'] }], metadata: { lambda: { deploy: { memory: 512, timeout: 300, log_retention: 30, env: {} } } } };

test.each([
  ['an unknown callee', [pkg('a', { route_prefix: '/a', calls: ['ghost'] }), gate], /a: \[package\.metadata\.service\] calls "ghost", which is not a registered service/],
  ['a config key naming a missing table', [pkg('a', { route_prefix: '/a', config: { t: { table: 'nope' } } }), gate], /a: config key t names table "nope"/],
  ['missing deploy metadata', [pkg('a', { route_prefix: '/a' }, null), gate], /a: \[package\.metadata\.lambda\.deploy\] is missing/],
  ['a fractional timeout', [pkg('a', { route_prefix: '/a' }, { memory: 128, timeout: 2.5, log_retention: 7 }), gate], /a: \[package\.metadata\.lambda\.deploy\] timeout must be a positive integer, got 2\.5/],
  ['no hook package', [pkg('a', { route_prefix: '/a' })], /exactly one package with the binaries before-allow-traffic and after-allow-traffic, found 0/],
])('a registry with %s: a clear error', (_, packages, message) => {
  expect(() => fromMetadata({ packages: packages as any, workspace_root: '/w' })).toThrow(RegistryError);
  expect(() => fromMetadata({ packages: packages as any, workspace_root: '/w' })).toThrow(message);
});

test('callees are built before callers; a cycle is refused', () => {
  const service = (name: string, calls: string[]): Service => ({ name, manifestPath: '', spec: { route_prefix: `/${name}`, calls }, deploy: { memory: 1, timeout: 1, log_retention: 1, env: {} } });
  expect(calleesFirst([service('payments', ['accounts']), service('accounts', [])]).map((s) => s.name)).toEqual(['accounts', 'payments']);
  expect(() => calleesFirst([service('a', ['b']), service('b', ['a'])])).toThrow(/cycle: a → b → a/);
});

test('a service added to the registry is deployed with no edit under infra/', () => {
  const real = workspaceRegistry();
  const accounts = real.services.find((s) => s.name === 'accounts')!;
  const cards: Service = { ...accounts, name: 'cards', spec: { ...accounts.spec, route_prefix: '/cards', team: 'card-issuing', tables: { cards: { partition_key: 'pk' } }, config: { table_name: { table: 'cards' } } } };
  const registry: Registry = { ...real, services: [...real.services, cards] };
  const { stages } = synth(registry);
  const dev = stages.get('dev')!;
  dev.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'cards' });
  dev.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live' });
  dev.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', real.services.length + 1);
  dev.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'fintech-dev-cards', Tags: Match.arrayWith([{ Key: 'team', Value: 'card-issuing' }]) });
  dev.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'cards', Tags: Match.arrayWith([{ Key: 'team', Value: 'card-issuing' }]) });
  dev.hasResourceProperties('AWS::SSM::Parameter', { Name: '/fintech/dev/cards/table_name', Value: 'fintech-dev-cards' });
  dev.hasResourceProperties('AWS::ApiGateway::RestApi', { Name: 'fintech-dev-cards' });
});
