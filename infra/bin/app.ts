#!/usr/bin/env node
/**
 * The CDK app: services from the Cargo registry, settings from `cdk.json`.
 *
 * `-c skipAssets=true` (`cargo xtask synth --skip-assets`) synthesizes the
 * templates without building the Rust assets (no `cargo lambda build`), for
 * reviewing and linting templates in seconds; such a cloud assembly has
 * placeholder assets and cannot be deployed.
 */
import { App } from 'aws-cdk-lib';
import { build } from '../lib/app';
import * as registry from '../lib/registry';

const app = new App();
if (app.node.tryGetContext('skipAssets') === 'true') {
  // CDK's own switch: bundle the assets of none of the stacks.
  app.node.setContext('aws:cdk:bundling-stacks', []);
}
build(app, registry.load());
