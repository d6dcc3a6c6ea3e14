/**
 * Physical names, the same convention as `shared::naming::Deployment` in
 * Rust (the services compute these names at run time, so both must agree;
 * test/config.test.ts holds the same examples as the Rust unit test).
 */

/** An app deployed to one stage. */
export class Deployment {
  constructor(readonly app: string, readonly stage: string) {}

  /** `/{app}/{stage}/{service}/`: where a service's configuration lives in SSM. */
  configPrefix(service: string): string {
    return `/${this.app}/${this.stage}/${service}/`;
  }

  /** `{app}-{stage}-{table}`. */
  tableName(table: string): string {
    return `${this.app}-${this.stage}-${table}`;
  }

  /** `{app}/{stage}/{secret}`. */
  secretName(secret: string): string {
    return `${this.app}/${this.stage}/${secret}`;
  }
}

/** Where the traffic hooks' configuration lives (`traffic_gate::lambda::CONFIG_NAME`). */
export const HOOK_CONFIG_NAME = 'traffic-gate';
