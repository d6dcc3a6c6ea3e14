/**
 * The stage's identity: a Cognito user pool (Plus feature plan, MFA
 * required, strong passwords), one resource server per service with the
 * scopes its registry entry declares, an app client for customers
 * (authorization code grant, SRP sign-in; every scope but the machine
 * clients' `<service>/service` and `<service>/back-office`), a machine
 * client for the traffic hooks (client credentials, every scope: it is the
 * back office that funds its test accounts) and one for each service that
 * calls others (client credentials, the `<callee>/service` scope of each
 * service it calls, which acts for the customer it names and never for no
 * one). Each machine client's id and secret go to Secrets Manager for its
 * owner alone, its token endpoint to its owner's configuration. The API
 * Gateway authorizer checks the pool's tokens and every service verifies
 * them again itself (`shared::auth`): `environment()` is what its function needs.
 */
import { Duration, RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { acknowledge } from './nag';
import { Deployment, HOOK_CONFIG_NAME } from './naming';
import { Service } from './registry';

/** The scope name that makes a token a service of the deployment acting for a customer (`shared::auth::SERVICE_SCOPE`). */
export const SERVICE_SCOPE = 'service';

/** The scope name that makes a token the back office, which may act for no one (`shared::auth::BACK_OFFICE_SCOPE`). */
export const BACK_OFFICE_SCOPE = 'back-office';

/** Whether `name` (`<server>/<scope>`) is a scope only machine clients are allowed (`shared::auth::is_machine_scope`). */
export function isMachineScope(name: string): boolean {
  const scope = name.slice(name.indexOf('/') + 1);
  return scope === SERVICE_SCOPE || scope === BACK_OFFICE_SCOPE;
}

/** The logical name of machine client `owner`'s secret (`shared::credentials::client_secret`). */
export function clientSecretName(owner: string): string {
  return `${owner}-client`;
}

/** A machine client and where its owner reads it. */
export interface MachineClient {
  readonly client: cognito.UserPoolClient;
  /** Its id and secret, readable by its owner only. */
  readonly secret: secretsmanager.Secret;
}

/** Props of a stage's identity. */
export interface CustomerIdentityProps {
  readonly deployment: Deployment;
  readonly services: readonly Service[];
  /** Where the customers' app client may send users back after sign-in. */
  readonly callbackUrls: string[];
}

/** The user pool, its scopes and clients. */
export class CustomerIdentity extends Construct {
  readonly pool: cognito.UserPool;
  /** Customers' app (authorization code grant). */
  readonly customers: cognito.UserPoolClient;
  /** The traffic hooks' machine client (client credentials). */
  readonly hooks: MachineClient;
  /** The machine client of each service that calls others, by service. */
  readonly callers: ReadonlyMap<string, MachineClient>;
  /** Every scope of every service, `<service>/<name>`. */
  readonly scopes: string[];
  /** The scopes of each service's resource server, `<service>/<name>`, by service. */
  readonly scopesOf: ReadonlyMap<string, string[]>;
  private readonly domain: cognito.UserPoolDomain;

  constructor(scope: Construct, id: string, props: CustomerIdentityProps) {
    super(scope, id);
    const { deployment } = props;
    this.pool = new cognito.UserPool(this, 'Pool', {
      userPoolName: `${deployment.app}-${deployment.stage}-customers`,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const oauthScopes = new Map<string, cognito.OAuthScope>();
    const scopesOf = new Map<string, string[]>();
    for (const service of props.services) {
      const declared = Object.entries(service.spec.scopes ?? {});
      if (declared.length === 0) {
        continue;
      }
      const serverScopes = declared.map(([name, description]) => new cognito.ResourceServerScope({
        scopeName: name,
        scopeDescription: description,
      }));
      const server = this.pool.addResourceServer(`Server-${service.name}`, {
        identifier: service.name,
        userPoolResourceServerName: service.name,
        scopes: serverScopes,
      });
      for (const s of serverScopes) {
        oauthScopes.set(`${service.name}/${s.scopeName}`, cognito.OAuthScope.resourceServer(server, s));
      }
      scopesOf.set(service.name, serverScopes.map((s) => `${service.name}/${s.scopeName}`));
    }
    this.scopes = [...oauthScopes.keys()];
    this.scopesOf = scopesOf;
    const customerScopes = [...oauthScopes.entries()]
      .filter(([name]) => !isMachineScope(name))
      .map(([, scope]) => scope);
    this.domain = this.pool.addDomain('Domain', {
      cognitoDomain: { domainPrefix: `${deployment.app}-${deployment.stage}-${Stack.of(this).account}`.toLowerCase() },
    });
    this.customers = this.pool.addClient('Customers', {
      userPoolClientName: 'customers',
      authFlows: { userSrp: true },
      generateSecret: false,
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, ...customerScopes],
        callbackUrls: props.callbackUrls,
      },
      accessTokenValidity: Duration.minutes(60),
      preventUserExistenceErrors: true,
    });
    this.hooks = this.machineClient(deployment, 'TrafficHooks', HOOK_CONFIG_NAME, [...oauthScopes.values()]);
    const callers = new Map<string, MachineClient>();
    for (const service of props.services) {
      const allowed = (service.spec.calls ?? [])
        .map((callee) => oauthScopes.get(`${callee}/${SERVICE_SCOPE}`))
        .filter((scope): scope is cognito.OAuthScope => scope !== undefined);
      if (allowed.length > 0) {
        callers.set(service.name, this.machineClient(deployment, `Caller-${service.name}`, service.name, allowed));
      }
    }
    this.callers = callers;
  }

  /**
   * Machine client `owner` allowed `scopes`: its id and secret in the secret
   * `clientSecretName(owner)`, the token endpoint in `owner`'s configuration.
   */
  private machineClient(deployment: Deployment, id: string, owner: string, scopes: cognito.OAuthScope[]): MachineClient {
    const client = this.pool.addClient(id, {
      userPoolClientName: owner,
      generateSecret: true,
      oAuth: { flows: { clientCredentials: true }, scopes },
      accessTokenValidity: Duration.minutes(15),
    });
    // No user signs in through a machine client: Cognito's default would
    // allow SRP and custom sign-in, and such a user's token would carry the
    // client's service scopes (the services refuse it, as a second defence).
    (client.node.defaultChild as cognito.CfnUserPoolClient).explicitAuthFlows = ['ALLOW_REFRESH_TOKEN_AUTH'];
    const secret = new secretsmanager.Secret(this, `${id}Client`, {
      secretName: deployment.secretName(clientSecretName(owner)),
      description: `${owner}'s app client of the stage's user pool; read by ${owner} only`,
      secretObjectValue: {
        client_id: SecretValue.unsafePlainText(client.userPoolClientId),
        // CloudFormation's own ClientSecret attribute: no custom resource
        // (and no extra Lambda function) to read it.
        client_secret: SecretValue.resourceAttribute(
          (client.node.defaultChild as cognito.CfnUserPoolClient).attrClientSecret,
        ),
      },
    });
    acknowledge(secret, {
      id: 'AwsSolutions-SMG4',
      reason: 'The value is the app client\'s secret, which Cognito generates; rotating it means a second client, then retiring the first (docs/runbook.md).',
    });
    new ssm.StringParameter(this, `${id}TokenUrl`, {
      parameterName: `${deployment.configPrefix(owner)}token_url`,
      stringValue: `${this.domain.baseUrl()}/oauth2/token`,
      description: `${owner} gets its client-credentials tokens here`,
    });
    return { client, secret };
  }

  /** The issuer (`iss` of the pool's tokens). */
  issuer(): string {
    return `https://cognito-idp.${Stack.of(this).region}.amazonaws.com/${this.pool.userPoolId}`;
  }

  /** What a service's function verifies tokens with (`shared::auth::IdentitySettings::from_env`). */
  environment(): Record<string, string> {
    return {
      AUTH_ISSUER: this.issuer(),
      AUTH_JWKS_URL: `${this.issuer()}/.well-known/jwks.json`,
      AUTH_CLIENT_IDS: [this.customers, ...this.machineClients()].map((c) => c.userPoolClientId).join(','),
      AUTH_SERVICE_CLIENT_IDS: this.machineClients().map((c) => c.userPoolClientId).join(','),
    };
  }

  /** The deployment's machine clients: only their own tokens may carry a service scope. */
  private machineClients(): cognito.UserPoolClient[] {
    return [this.hooks.client, ...[...this.callers.values()].map((c) => c.client)];
  }

  /** Lets `role` (the hooks') read their client. */
  grantHooks(role: iam.IRole): void {
    this.hooks.secret.grantRead(role);
  }

  /** Lets `role` (service `service`'s) read its client, when it has one. */
  grantCaller(service: string, role: iam.IRole): void {
    this.callers.get(service)?.secret.grantRead(role);
  }
}
