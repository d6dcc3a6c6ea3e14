/**
 * No IAM statement in the app grants a `*` action. CDK's own grants do
 * (`bucket.grantRead` is `s3:GetObject*`, `s3:GetBucket*`, `s3:List*`; a key's
 * default policy gives the account root `kms:*`), and CDK Pipelines uses
 * them. This aspect rewrites every Allow statement of every policy document
 * (identity policies, roles' inline policies, key, bucket, topic and queue
 * policies) at synthesis, replacing each such action with the actions it
 * stands for today, written out. Synthesis fails on a wildcard action not in
 * the table, so a new CDK grant cannot bring one in unnoticed.
 *
 * Deny statements keep their wildcards: `s3:*` in a bucket's enforce-SSL
 * policy must keep covering every action, including ones added later.
 */
import { AspectPriority, Aspects, CfnResource, IAspect, IResolveContext, Lazy } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Each wildcard action CDK's grants use, and the actions it matches (AWS
 * Service Authorization Reference, 2026-11) that apply to the resources those
 * grants name.
 */
export const EXPANSIONS: Readonly<Record<string, readonly string[]>> = {
  's3:GetObject*': [
    's3:GetObject', 's3:GetObjectAcl', 's3:GetObjectAttributes', 's3:GetObjectLegalHold', 's3:GetObjectRetention',
    's3:GetObjectTagging', 's3:GetObjectTorrent', 's3:GetObjectVersion', 's3:GetObjectVersionAcl',
    's3:GetObjectVersionAttributes', 's3:GetObjectVersionForReplication', 's3:GetObjectVersionTagging',
    's3:GetObjectVersionTorrent',
  ],
  's3:GetBucket*': [
    's3:GetBucketAcl', 's3:GetBucketCORS', 's3:GetBucketLocation', 's3:GetBucketLogging', 's3:GetBucketNotification',
    's3:GetBucketObjectLockConfiguration', 's3:GetBucketOwnershipControls', 's3:GetBucketPolicy',
    's3:GetBucketPolicyStatus', 's3:GetBucketPublicAccessBlock', 's3:GetBucketRequestPayment', 's3:GetBucketTagging',
    's3:GetBucketVersioning', 's3:GetBucketWebsite',
  ],
  's3:List*': ['s3:ListBucket', 's3:ListBucketVersions', 's3:ListBucketMultipartUploads', 's3:ListMultipartUploadParts'],
  's3:DeleteObject*': ['s3:DeleteObject', 's3:DeleteObjectTagging', 's3:DeleteObjectVersion', 's3:DeleteObjectVersionTagging'],
  's3:Abort*': ['s3:AbortMultipartUpload'],
  'kms:ReEncrypt*': ['kms:ReEncryptFrom', 'kms:ReEncryptTo'],
  'kms:GenerateDataKey*': [
    'kms:GenerateDataKey', 'kms:GenerateDataKeyPair', 'kms:GenerateDataKeyPairWithoutPlaintext',
    'kms:GenerateDataKeyWithoutPlaintext',
  ],
  // A key's default policy: the account root may do anything with the key,
  // so that IAM policies in the account can grant its use.
  'kms:*': [
    'kms:CancelKeyDeletion', 'kms:CreateAlias', 'kms:CreateGrant', 'kms:Decrypt', 'kms:DeleteAlias',
    'kms:DeleteImportedKeyMaterial', 'kms:DescribeKey', 'kms:DisableKey', 'kms:DisableKeyRotation', 'kms:EnableKey',
    'kms:EnableKeyRotation', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:GenerateDataKeyPair',
    'kms:GenerateDataKeyPairWithoutPlaintext', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:GenerateMac',
    'kms:GetKeyPolicy', 'kms:GetKeyRotationStatus', 'kms:GetParametersForImport', 'kms:GetPublicKey',
    'kms:ImportKeyMaterial', 'kms:ListGrants', 'kms:ListKeyPolicies', 'kms:ListKeyRotations', 'kms:ListResourceTags',
    'kms:PutKeyPolicy', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:ReplicateKey', 'kms:RetireGrant',
    'kms:RevokeGrant', 'kms:RotateKeyOnDemand', 'kms:ScheduleKeyDeletion', 'kms:Sign', 'kms:TagResource',
    'kms:UntagResource', 'kms:UpdateAlias', 'kms:UpdateKeyDescription', 'kms:UpdatePrimaryRegion', 'kms:Verify',
    'kms:VerifyMac',
  ],
};

/** The CloudFormation properties that hold a policy document, by resource type. */
const DOCUMENTS: Readonly<Record<string, readonly string[]>> = {
  'AWS::IAM::Policy': ['policyDocument'],
  'AWS::IAM::ManagedPolicy': ['policyDocument'],
  'AWS::IAM::Role': ['policies'],
  'AWS::KMS::Key': ['keyPolicy'],
  'AWS::S3::BucketPolicy': ['policyDocument'],
  'AWS::SNS::TopicPolicy': ['policyDocument'],
  'AWS::SQS::QueuePolicy': ['policyDocument'],
};

/**
 * A resolved policy document with every Allow statement's wildcard actions
 * written out; `unknown` collects wildcard actions the table lacks.
 */
export function explicit(document: any, unknown: string[]): any {
  if (!document || !Array.isArray(document.Statement)) {
    return document;
  }
  const Statement = document.Statement.map((statement: any) => {
    if (statement.Effect !== 'Allow' || statement.Action === undefined) {
      return statement;
    }
    const listed: string[] = Array.isArray(statement.Action) ? statement.Action : [statement.Action];
    const actions = [...new Set(listed.flatMap((action) => {
      if (typeof action !== 'string' || !action.includes('*')) {
        return [action];
      }
      const expansion = EXPANSIONS[action];
      if (!expansion) {
        unknown.push(action);
        return [action];
      }
      return expansion;
    }))];
    return { ...statement, Action: actions.length === 1 ? actions[0] : actions };
  });
  return { ...document, Statement };
}

/** Rewrites one resource's policy documents at synthesis (see the module comment). */
class ExplicitActions implements IAspect {
  visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node)) {
      return;
    }
    for (const property of DOCUMENTS[node.cfnResourceType] ?? []) {
      const original = (node as any)[property];
      if (original === undefined) {
        continue;
      }
      (node as any)[property] = Lazy.uncachedAny({
        produce: (context: IResolveContext) => {
          const resolved = context.resolve(original);
          const unknown: string[] = [];
          // A role's inline policies are L1 structs (camelCase) until rendered.
          const rewritten = property === 'policies'
            ? (resolved ?? []).map((policy: any) => ({
              PolicyName: policy.PolicyName ?? policy.policyName,
              PolicyDocument: explicit(policy.PolicyDocument ?? policy.policyDocument, unknown),
            }))
            : explicit(resolved, unknown);
          if (unknown.length > 0) {
            throw new Error(`${node.node.path} grants wildcard action(s) ${unknown.join(', ')}: add what each stands for to EXPANSIONS in lib/explicit-actions.ts`);
          }
          return rewritten;
        },
      });
    }
  }
}

/** Applies the rewrite to everything under `scope` (before read-only aspects run). */
export function writeActionsOut(scope: IConstruct): void {
  Aspects.of(scope).add(new ExplicitActions(), { priority: AspectPriority.MUTATING });
}
