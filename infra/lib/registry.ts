/**
 * The service registry, read from `cargo metadata`: every package with a
 * `[package.metadata.service]` table is a service, and the package with the
 * `before-allow-traffic` and `after-allow-traffic` binaries is the traffic
 * gate. Nothing in infra/ lists services by name.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/** A global secondary index's keys (strings), as in `local_aws::registry::IndexSpec`. */
export interface IndexSpec {
  readonly partition_key: string;
  readonly sort_key?: string;
}

/** A DynamoDB table's keys, as in `local_aws::registry::TableSpec`. */
export interface TableSpec {
  readonly partition_key: string;
  readonly sort_key?: string;
  readonly ttl_attribute?: string;
  /** Global secondary indexes by name, every attribute projected. */
  readonly indexes?: Record<string, IndexSpec>;
  /** Items only the local stack puts in the table (ignored here). */
  readonly seed?: string;
}

/** A config value: a literal, or the physical name of one of the service's tables. */
export type ConfigValue = string | { readonly table: string };

/** `[package.metadata.service]`, as in `local_aws::registry::ServiceSpec`. */
export interface ServiceSpec {
  readonly route_prefix: string;
  readonly team?: string;
  readonly secret?: string;
  readonly secret_value?: Record<string, unknown>;
  readonly calls?: string[];
  readonly tables?: Record<string, TableSpec>;
  readonly config?: Record<string, ConfigValue>;
  readonly postman?: { collection: string; before_traffic?: string[]; after_traffic?: string[]; traffic?: string[] };
  readonly alarms?: Record<string, number>;
  /** Scheduled functions of the package, by binary name (`local_aws::registry::ScheduleSpec`). */
  readonly schedules?: Record<string, { readonly every_seconds: number }>;
  /** OAuth scopes of the service's resource server (`<service>/<name>`), with their descriptions. */
  readonly scopes?: Record<string, string>;
}

/** `[package.metadata.lambda.deploy]`: the settings `cargo lambda deploy` uses too. */
export interface DeploySpec {
  readonly memory: number;
  readonly timeout: number;
  readonly log_retention: number;
  readonly env: Record<string, string>;
}

/** A registered service. */
export interface Service {
  /** The package name, which is also the function name. */
  readonly name: string;
  /** Path of the package's Cargo.toml. */
  readonly manifestPath: string;
  readonly spec: ServiceSpec;
  readonly deploy: DeploySpec;
}

/** The traffic-gate package: both hook binaries. */
export interface Hooks {
  readonly manifestPath: string;
  readonly deploy: DeploySpec;
}

/** Everything infra/ needs from the workspace. */
export interface Registry {
  /** The workspace root. */
  readonly root: string;
  readonly services: Service[];
  readonly hooks: Hooks;
}

/** The hook binaries CodeDeploy invokes. */
export const HOOK_BINARIES = ['before-allow-traffic', 'after-allow-traffic'] as const;

interface CargoPackage {
  name: string;
  manifest_path: string;
  targets: { name: string; kind: string[] }[];
  metadata: { service?: ServiceSpec; lambda?: { deploy?: Partial<DeploySpec> } } | null;
}

/** An error naming the package and the field that is wrong. */
export class RegistryError extends Error {}

function deploySpec(pkg: CargoPackage): DeploySpec {
  const deploy = pkg.metadata?.lambda?.deploy;
  if (!deploy) {
    throw new RegistryError(`${pkg.name}: [package.metadata.lambda.deploy] is missing (memory, timeout, log_retention, env)`);
  }
  for (const field of ['memory', 'timeout', 'log_retention'] as const) {
    if (typeof deploy[field] !== 'number' || !Number.isInteger(deploy[field]) || (deploy[field] as number) <= 0) {
      throw new RegistryError(`${pkg.name}: [package.metadata.lambda.deploy] ${field} must be a positive integer, got ${JSON.stringify(deploy[field])}`);
    }
  }
  return {
    memory: deploy.memory as number,
    timeout: deploy.timeout as number,
    log_retention: deploy.log_retention as number,
    env: deploy.env ?? {},
  };
}

/** Builds the registry from `cargo metadata` output (a parsed JSON document). */
export function fromMetadata(metadata: { packages: CargoPackage[]; workspace_root: string }): Registry {
  const services = metadata.packages
    .filter((pkg) => pkg.metadata?.service)
    .map((pkg) => ({
      name: pkg.name,
      manifestPath: pkg.manifest_path,
      spec: pkg.metadata!.service!,
      deploy: deploySpec(pkg),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const gates = metadata.packages.filter((pkg) =>
    HOOK_BINARIES.every((bin) => pkg.targets.some((t) => t.name === bin && t.kind.includes('bin'))));
  if (gates.length !== 1) {
    throw new RegistryError(`expected exactly one package with the binaries ${HOOK_BINARIES.join(' and ')}, found ${gates.length}`);
  }
  const names = new Set(services.map((s) => s.name));
  for (const service of services) {
    for (const callee of service.spec.calls ?? []) {
      if (!names.has(callee)) {
        throw new RegistryError(`${service.name}: [package.metadata.service] calls "${callee}", which is not a registered service`);
      }
    }
    for (const [key, value] of Object.entries(service.spec.config ?? {})) {
      if (typeof value !== 'string' && !(service.spec.tables ?? {})[value.table]) {
        throw new RegistryError(`${service.name}: config key ${key} names table "${value.table}", which is not in its tables`);
      }
    }
  }
  return {
    root: metadata.workspace_root,
    services,
    hooks: { manifestPath: gates[0].manifest_path, deploy: deploySpec(gates[0]) },
  };
}

/** Reads the registry of the workspace `infra/` lives in. */
export function load(root: string = path.resolve(__dirname, '..', '..')): Registry {
  const out = execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps', '--offline'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return fromMetadata(JSON.parse(out));
}
