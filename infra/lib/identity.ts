/**
 * The stage's customer identity: a Cognito user pool (Plus feature plan,
 * MFA required, strong passwords), one resource server per service with the
 * scopes its registry entry declares, an app client for customers
 * (authorization code grant, SRP sign-in) and a machine client for the
 * traffic hooks (client credentials), whose id and secret go to Secrets
 * Manager for the hooks alone. Every service verifies the pool's tokens
 * itself (`shared::auth`): `environment()` is what its function needs.
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

/** The logical name of the hooks' client secret (`traffic_gate::credentials::CLIENT_SECRET`). */
export const HOOKS_CLIENT_SECRET = 'traffic-gate-client';

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
  readonly hooks: cognito.UserPoolClient;
  /** The hooks' client id and secret, readable by the hooks only. */
  readonly hooksSecret: secretsmanager.Secret;
  /** Every scope of every service, `<service>/<name>`. */
  readonly scopes: string[];

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
    const oauthScopes: cognito.OAuthScope[] = [];
    const scopes: string[] = [];
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
        oauthScopes.push(cognito.OAuthScope.resourceServer(server, s));
        scopes.push(`${service.name}/${s.scopeName}`);
      }
    }
    this.scopes = scopes;
    const domain = this.pool.addDomain('Domain', {
      cognitoDomain: { domainPrefix: `${deployment.app}-${deployment.stage}-${Stack.of(this).account}`.toLowerCase() },
    });
    this.customers = this.pool.addClient('Customers', {
      userPoolClientName: 'customers',
      authFlows: { userSrp: true },
      generateSecret: false,
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, ...oauthScopes],
        callbackUrls: props.callbackUrls,
      },
      accessTokenValidity: Duration.minutes(60),
      preventUserExistenceErrors: true,
    });
    this.hooks = this.pool.addClient('TrafficHooks', {
      userPoolClientName: 'traffic-gate',
      generateSecret: true,
      oAuth: { flows: { clientCredentials: true }, scopes: oauthScopes },
      accessTokenValidity: Duration.minutes(15),
    });
    this.hooksSecret = new secretsmanager.Secret(this, 'TrafficHooksClient', {
      secretName: deployment.secretName(HOOKS_CLIENT_SECRET),
      description: 'The traffic hooks\' app client of the customer user pool; read by the hooks only',
      secretObjectValue: {
        client_id: SecretValue.unsafePlainText(this.hooks.userPoolClientId),
        // CloudFormation's own ClientSecret attribute: no custom resource
        // (and no extra Lambda function) to read it.
        client_secret: SecretValue.resourceAttribute(
          (this.hooks.node.defaultChild as cognito.CfnUserPoolClient).attrClientSecret,
        ),
      },
    });
    acknowledge(this.hooksSecret, {
      id: 'AwsSolutions-SMG4',
      reason: 'The value is the app client\'s secret, which Cognito generates and cannot rotate in place; rotating means a new client (docs/runbook.md).',
    });
    new ssm.StringParameter(this, 'TokenUrl', {
      parameterName: `${deployment.configPrefix(HOOK_CONFIG_NAME)}token_url`,
      stringValue: `${domain.baseUrl()}/oauth2/token`,
      description: 'The traffic hooks get their client-credentials token here',
    });
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
      AUTH_CLIENT_IDS: `${this.customers.userPoolClientId},${this.hooks.userPoolClientId}`,
    };
  }

  /** Lets `role` (the hooks') read their client. */
  grantHooks(role: iam.IRole): void {
    this.hooksSecret.grantRead(role);
  }
}
