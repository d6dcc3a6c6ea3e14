/**
 * Test support: the real app (the real registry from `cargo metadata`, the
 * real `cdk.json`), synthesized once per test file with Lambda bundling
 * skipped — `cargo xtask synth` is what builds the Rust assets.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { build } from '../lib/app';
import { PipelineStack } from '../lib/pipeline-stack';
import * as registry from '../lib/registry';
import { Registry } from '../lib/registry';

/** `cdk.json`'s context. */
export const CDK_CONTEXT = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

let cached: Registry | undefined;

/** The workspace's registry (read once). */
export function workspaceRegistry(): Registry {
  cached ??= registry.load();
  return cached;
}

/** A synthesized app. */
export interface Synthesized {
  readonly app: App;
  readonly pipeline: PipelineStack;
  /** Stage name → its services template. */
  readonly stages: Map<string, Template>;
  /** The pipeline stack's template. */
  readonly pipelineTemplate: Template;
}

/** Builds and synthesizes the app; `context` overrides `cdk.json`. */
export function synth(reg: Registry = workspaceRegistry(), context: Record<string, unknown> = {}): Synthesized {
  const app = new App({
    context: { ...CDK_CONTEXT, ...context, 'aws:cdk:bundling-stacks': [] },
    outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-test-')),
  });
  const pipeline = build(app, reg);
  app.synth();
  const stages = new Map(pipeline.stages.map((stage) => [stage.settings.name, Template.fromStack(stage.stack)]));
  return { app, pipeline, stages, pipelineTemplate: Template.fromStack(pipeline) };
}

/** Every template of the assembly, by file name (pipeline and stages). */
export function allTemplates(app: App): Map<string, any> {
  const out = new Map<string, any>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else if (entry.name.endsWith('.template.json')) {
        out.set(path.relative(app.outdir, full), JSON.parse(fs.readFileSync(full, 'utf8')));
      }
    }
  };
  walk(app.outdir);
  return out;
}

/** The resource types whose properties hold policy documents, and where. */
const POLICY_DOCUMENTS: Record<string, (properties: any) => any[]> = {
  'AWS::IAM::Policy': (p) => [p.PolicyDocument],
  'AWS::IAM::ManagedPolicy': (p) => [p.PolicyDocument],
  'AWS::IAM::Role': (p) => [p.AssumeRolePolicyDocument, ...(p.Policies ?? []).map((policy: any) => policy.PolicyDocument)],
  'AWS::IAM::User': (p) => (p.Policies ?? []).map((policy: any) => policy.PolicyDocument),
  'AWS::IAM::Group': (p) => (p.Policies ?? []).map((policy: any) => policy.PolicyDocument),
  'AWS::KMS::Key': (p) => [p.KeyPolicy],
  'AWS::S3::BucketPolicy': (p) => [p.PolicyDocument],
  'AWS::SNS::TopicPolicy': (p) => [p.PolicyDocument],
  'AWS::SQS::QueuePolicy': (p) => [p.PolicyDocument],
  'AWS::SecretsManager::ResourcePolicy': (p) => [p.ResourcePolicy],
  'AWS::Lambda::LayerVersionPermission': () => [],
};

/**
 * Every policy statement in a template: identity policies, roles' trust and
 * inline policies, users' and groups' inline policies, and the resource
 * policies of keys, buckets, topics, queues and secrets.
 */
export function statements(template: any): { resource: string; statement: any }[] {
  const out: { resource: string; statement: any }[] = [];
  for (const [name, resource] of Object.entries<any>(template.Resources ?? {})) {
    const documents = POLICY_DOCUMENTS[resource.Type]?.(resource.Properties ?? {}) ?? [];
    for (const doc of documents) {
      const listed = doc?.Statement ?? [];
      for (const statement of Array.isArray(listed) ? listed : [listed]) {
        out.push({ resource: name, statement });
      }
    }
  }
  return out;
}

/** A statement's actions as a list. */
export function actions(statement: any): string[] {
  const value = statement.Action ?? [];
  return Array.isArray(value) ? value : [value];
}
