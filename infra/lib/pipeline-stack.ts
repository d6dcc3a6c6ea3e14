/**
 * The delivery pipeline (CDK Pipelines on CodePipeline): GitHub source
 * through a CodeConnections connection, one CodeBuild step running the
 * repository's `buildspec.yml` (tests, pacts, arm64 builds, synth), then one
 * deployment stage per configured stage — each its own account and region —
 * with a manual approval before the stages that ask for one, and SNS
 * notifications when anything fails.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as codepipeline from 'aws-cdk-lib/aws-codepipeline';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as pipelines from 'aws-cdk-lib/pipelines';
import { acknowledge, Acknowledged, arnPrefix, arnRef } from './nag';
import { Construct } from 'constructs';
import * as YAML from 'yaml';
import { AppConfig } from './config';
import { Registry } from './registry';
import { pascal, ServicesStage } from './services-stack';

/** Props of the pipeline stack. */
export interface PipelineStackProps extends StackProps {
  readonly registry: Registry;
  readonly config: AppConfig;
}

/** The pipeline and its notifications. */
export class PipelineStack extends Stack {
  /** The CDK pipeline. */
  readonly pipeline: pipelines.CodePipeline;
  /** The deployment stages, in order. */
  readonly stages: ServicesStage[];
  /** Pipeline failure notifications. */
  readonly notifications: sns.Topic;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { registry, config } = props;

    const source = pipelines.CodePipelineSource.connection(config.pipeline.repository, config.pipeline.branch, {
      connectionArn: config.pipeline.connectionArn,
      triggerOnPush: true,
    });
    const cache = new s3.Bucket(this, 'BuildCache', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      lifecycleRules: [{ expiration: Duration.days(30) }],
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: false,
    });
    acknowledge(cache, {
      id: 'AwsSolutions-S1',
      reason: 'Build cache (cargo registry, target/): rebuilt from source at any time; access logs would record only CodeBuild.',
    });

    const build = new pipelines.CodeBuildStep('Build', {
      input: source,
      commands: [],
      partialBuildSpec: codebuild.BuildSpec.fromObject(readBuildspec(registry.root)),
      primaryOutputDirectory: 'infra/cdk.out',
      buildEnvironment: {
        buildImage: codebuild.LinuxBuildImage.STANDARD_7_0,
        computeType: codebuild.ComputeType.LARGE,
      },
      cache: codebuild.Cache.bucket(cache, { prefix: 'build' }),
      timeout: Duration.minutes(90),
    });

    this.pipeline = new pipelines.CodePipeline(this, 'Pipeline', {
      synth: build,
      crossAccountKeys: true,
      enableKeyRotation: true,
      pipelineName: `${config.app}-delivery`,
      pipelineType: codepipeline.PipelineType.V2,
    });

    this.stages = config.stages.map((stage) => {
      const deployed = new ServicesStage(this, pascal(stage.name), {
        env: { account: stage.account, region: stage.region },
        registry,
        config,
        stage,
      });
      this.pipeline.addStage(deployed, stage.approval
        ? { pre: [new pipelines.ManualApprovalStep(`Approve-${stage.name}`, { comment: `Promote to ${stage.name} (${stage.account}/${stage.region})?` })] }
        : {});
      return deployed;
    });
    this.pipeline.buildPipeline();

    this.acknowledgeGeneratedGrants(cache);

    this.notifications = new sns.Topic(this, 'PipelineNotifications', {
      topicName: `${config.app}-delivery-notifications`,
      enforceSSL: true,
    });
    acknowledge(this.notifications, {
      id: 'AwsSolutions-SNS2',
      reason: 'Pipeline notifications carry execution ids and states, no customer data; CodeStar Notifications cannot publish to a topic under the AWS-managed SNS key.',
    });
    this.pipeline.pipeline.notifyOn('Failures', this.notifications, {
      events: [
        codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED,
        codepipeline.PipelineNotificationEvents.ACTION_EXECUTION_FAILED,
        codepipeline.PipelineNotificationEvents.MANUAL_APPROVAL_NEEDED,
      ],
    });
  }

  /**
   * CDK Pipelines' own roles use CDK's bucket and key grants, scoped to the
   * pipeline's artifact bucket and key, the build cache, and the CodeBuild
   * projects' own log groups and report groups (their wildcard actions are
   * written out by lib/explicit-actions.ts; the resources stay as scoped).
   */
  private acknowledgeGeneratedGrants(cache: s3.IBucket): void {
    const grants = 'CDK Pipelines grant on the pipeline\'s own artifact bucket, its KMS key or the build cache only';
    const codebuild = arnPrefix(this, 'codebuild');
    const logs = arnPrefix(this, 'logs');
    const projects = [this.pipeline.synthProject, this.pipeline.selfMutationProject].map((p) => arnRef(p).replace(/\.Arn>$/, '>'));
    const rules: Acknowledged[] = [
      ...[this.pipeline.pipeline.artifactBucket, cache]
        .map((bucket) => ({ id: `AwsSolutions-IAM5[Resource::${arnRef(bucket)}/*]`, reason: grants })),
      ...projects.flatMap((project) => [
        { id: `AwsSolutions-IAM5[Resource::${codebuild}:report-group/${project}-*]`, reason: 'The project\'s own report groups (JUnit from nextest and the collection runner).' },
        { id: `AwsSolutions-IAM5[Resource::${logs}:log-group:/aws/codebuild/${project}:*]`, reason: 'The project\'s own log streams.' },
      ]),
      { id: `AwsSolutions-IAM5[Resource::${codebuild}:report-group/*]`, reason: 'Asset publishing projects are created by CDK Pipelines per asset; their report groups are not known in advance.' },
      { id: `AwsSolutions-IAM5[Resource::${logs}:log-group:/aws/codebuild/*]`, reason: 'Asset publishing projects are created by CDK Pipelines per asset; their log groups are not known in advance.' },
      { id: `AwsSolutions-IAM5[Resource::arn:*:iam::${this.account}:role/*]`, reason: 'sts:AssumeRole only on roles tagged aws-cdk:bootstrap-role = deploy / file-publishing / image-publishing (the IAM condition scopes it to the CDK bootstrap roles).' },
      { id: 'AwsSolutions-IAM5[Resource::*]', reason: 'Generated by CDK Pipelines: self-mutation calls cloudformation:DescribeStacks and s3:ListBucket to find the bootstrap resources; the asset role starts and watches its own publishing builds (codebuild:StartBuild/StopBuild/BatchGetBuilds), which CDK does not scope.' },
      { id: 'AwsSolutions-S1', reason: 'Pipeline artifacts: encrypted with the pipeline key, reachable only by the pipeline roles; CloudTrail data events are the audit trail.' },
    ];
    acknowledge(this.pipeline, ...rules);
  }
}

/** `buildspec.yml` at the repository root, parsed. */
export function readBuildspec(root: string): Record<string, unknown> {
  const file = path.join(root, 'buildspec.yml');
  return YAML.parse(readFileSync(file, 'utf8'));
}
