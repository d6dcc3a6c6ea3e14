/**
 * The pipeline stack and the checks that span every template: stage order
 * and accounts, manual approval, the build running buildspec.yml, failure
 * notifications, no whole-service wildcard action anywhere, and cdk-nag
 * actually stopping synthesis on an unacknowledged finding.
 */
import { App, RemovalPolicy, Stack, Stage } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Match } from 'aws-cdk-lib/assertions';
import { EXPANSIONS, explicit } from '../lib/explicit-actions';
import { acknowledge, check } from '../lib/nag';
import { readBuildspec } from '../lib/pipeline-stack';
import { actions, allTemplates, CDK_CONTEXT, statements, synth, Synthesized, workspaceRegistry } from './app';

let synthesized: Synthesized;
beforeAll(() => {
  synthesized = synth();
});

test('source, build, self-update, assets, then every stage in order with its account; approval before prod', () => {
  const pipeline = Object.values<any>(synthesized.pipelineTemplate.findResources('AWS::CodePipeline::Pipeline'))[0];
  const stageNames = pipeline.Properties.Stages.map((s: any) => s.Name);
  const stages = CDK_CONTEXT.fintech.stages as any[];
  expect(stageNames).toEqual(['Source', 'Build', 'UpdatePipeline', 'Assets', ...stages.map((s) => s.name.charAt(0).toUpperCase() + s.name.slice(1))]);
  for (const stage of stages) {
    const deployed = pipeline.Properties.Stages.find((s: any) => s.Name.toLowerCase() === stage.name);
    const deploys = deployed.Actions.filter((a: any) => a.ActionTypeId.Provider === 'CloudFormation');
    expect(deploys.length).toBeGreaterThan(0);
    for (const action of deploys) {
      expect(JSON.stringify(action.RoleArn)).toContain(`:${stage.account}:role/`);
      // CodePipeline omits Region for actions in the pipeline's own region.
      expect(action.Region ?? CDK_CONTEXT.fintech.pipeline.region).toBe(stage.region);
    }
    const approvals = deployed.Actions.filter((a: any) => a.ActionTypeId.Category === 'Approval');
    expect(approvals).toHaveLength(stage.approval ? 1 : 0);
  }
  expect(stages.find((s) => s.name === 'prod').approval).toBe(true);
  const source = pipeline.Properties.Stages[0].Actions[0];
  expect(source.ActionTypeId.Provider).toBe('CodeStarSourceConnection');
  expect(source.Configuration).toMatchObject({
    ConnectionArn: CDK_CONTEXT.fintech.pipeline.connectionArn,
    FullRepositoryId: CDK_CONTEXT.fintech.pipeline.repository,
    BranchName: CDK_CONTEXT.fintech.pipeline.branch,
  });
});

test('the build project runs buildspec.yml, caches in S3, and publishes both JUnit reports', () => {
  const buildspec = readBuildspec(workspaceRegistry().root) as any;
  const projects = synthesized.pipelineTemplate.findResources('AWS::CodeBuild::Project');
  const build = Object.values<any>(projects).find((p) => JSON.stringify(p.Properties.Source.BuildSpec).includes('cargo xtask test'));
  expect(build).toBeDefined();
  const spec = JSON.parse(build.Properties.Source.BuildSpec);
  for (const phase of ['install', 'build']) {
    expect(spec.phases[phase].commands).toEqual(expect.arrayContaining(buildspec.phases[phase].commands));
  }
  expect(Object.keys(spec.reports)).toEqual(expect.arrayContaining(['nextest', 'collections']));
  expect(spec.artifacts['base-directory']).toBe('infra/cdk.out');
  expect(build.Properties.Cache.Type).toBe('S3');
  expect(build.Properties.Environment.ComputeType).toBe('BUILD_GENERAL1_LARGE');
});

test('pipeline failures notify the SNS topic', () => {
  synthesized.pipelineTemplate.hasResourceProperties('AWS::CodeStarNotifications::NotificationRule', {
    EventTypeIds: Match.arrayWith(['codepipeline-pipeline-pipeline-execution-failed', 'codepipeline-pipeline-action-execution-failed']),
    Targets: [{ TargetType: 'SNS', TargetAddress: Match.anyValue() }],
  });
  synthesized.pipelineTemplate.hasResourceProperties('AWS::CodePipeline::Pipeline', { PipelineType: 'V2' });
});

test('no statement in any template allows an action with a "*" (identity and resource policies)', () => {
  const templates = allTemplates(synthesized.app);
  expect(templates.size).toBe(1 + CDK_CONTEXT.fintech.stages.length);
  const offenders: string[] = [];
  const denies: string[] = [];
  let allowed = 0;
  for (const [file, template] of templates) {
    for (const { resource, statement } of statements(template)) {
      expect(statement.NotAction).toBeUndefined();
      const wildcards = actions(statement).filter((action) => typeof action === 'string' && action.includes('*'));
      if (statement.Effect === 'Allow') {
        allowed += 1;
        offenders.push(...wildcards.map((action) => `${file} ${resource}: ${action}`));
      } else {
        denies.push(...wildcards.map((action) => `${resource}: ${action}`));
      }
    }
  }
  expect(allowed).toBeGreaterThan(50);
  expect(offenders).toEqual([]);
  // The one wildcard left is a Deny: the artifact and cache buckets' enforce-SSL statements.
  expect(new Set(denies.map((d) => d.split(': ')[1]))).toEqual(new Set(['s3:*']));
});

test('the key policy and CDK grants are written out action by action', () => {
  const offenders: string[] = [];
  const unknown: string[] = [];
  const rewritten = explicit({
    Statement: [
      { Effect: 'Allow', Action: ['s3:GetObject*', 's3:PutObject'], Resource: '*' },
      { Effect: 'Allow', Action: 'kms:*', Principal: { AWS: 'root' }, Resource: '*' },
      { Effect: 'Deny', Action: 's3:*', Resource: '*' },
      { Effect: 'Allow', Action: 'dynamodb:*', Resource: '*' },
    ],
  }, unknown);
  expect(rewritten.Statement[0].Action).toEqual([...EXPANSIONS['s3:GetObject*'], 's3:PutObject']);
  expect(rewritten.Statement[1].Action).toContain('kms:PutKeyPolicy');
  expect(rewritten.Statement[2].Action).toBe('s3:*');
  expect(unknown).toEqual(['dynamodb:*']);
  for (const [wildcard, expansion] of Object.entries(EXPANSIONS)) {
    const prefix = wildcard.replace(/\*$/, '');
    offenders.push(...expansion.filter((action) => !action.startsWith(prefix) || action.includes('*')).map((a) => `${wildcard}: ${a}`));
  }
  expect(offenders).toEqual([]);
});

test('an acknowledgement without a reason is refused', () => {
  const stack = new Stack(new App(), 'Reasons');
  expect(() => acknowledge(stack, { id: 'AwsSolutions-S1', reason: '' })).toThrow(/AwsSolutions-S1: expected a reason of at least five words/);
  expect(() => acknowledge(stack, { id: 'AwsSolutions-S1', reason: 'not needed' })).toThrow(/at least five words/);
  expect(() => acknowledge(stack, { id: 'AwsSolutions-S1', reason: 'Access logs of this bucket go elsewhere already.' })).not.toThrow();
});

test('cdk-nag stops synthesis on an unacknowledged finding', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stage = new Stage(app, 'Probe');
  const stack = new Stack(stage, 'Bucket');
  new s3.Bucket(stack, 'Unlogged', { removalPolicy: RemovalPolicy.DESTROY });
  check(stage);
  expect(() => app.synth()).toThrow(/AwsSolutions-S1'/);
});
