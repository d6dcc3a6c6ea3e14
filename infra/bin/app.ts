#!/usr/bin/env node
/**
 * The CDK app: services from the Cargo registry, settings from `cdk.json`.
 */
import { App } from 'aws-cdk-lib';
import { build } from '../lib/app';
import * as registry from '../lib/registry';

const app = new App();
build(app, registry.load());
