/**
 * The whole app on one `App`: the pipeline stack with one `ServicesStage` per
 * configured stage, every wildcard action written out, cdk-nag on all of it. `bin/app.ts` and the tests both
 * build it here.
 */
import { App } from 'aws-cdk-lib';
import { parse } from './config';
import { writeActionsOut } from './explicit-actions';
import { check } from './nag';
import { PipelineStack } from './pipeline-stack';
import { Registry } from './registry';

/** Adds the pipeline stack (and through it every stage) to `app`. */
export function build(app: App, registry: Registry): PipelineStack {
  const config = parse(app.node.tryGetContext('fintech'));
  const pipeline = new PipelineStack(app, 'Pipeline', {
    env: { account: config.pipeline.account, region: config.pipeline.region },
    stackName: `${config.app}-pipeline`,
    description: `${config.app} delivery pipeline: build, test, then ${config.stages.map((s) => s.name).join(' → ')}`,
    registry,
    config,
  });
  writeActionsOut(app);
  check(app);
  return pipeline;
}
