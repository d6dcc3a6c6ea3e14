/**
 * cdk-nag (v3, a CDK policy-validation plugin): its AwsSolutions pack runs on
 * every stage; synthesis stops on any finding not acknowledged here with a
 * reason.
 */
import { CfnElement, Stack, Stage, Token, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** A rule id (optionally `Rule[Finding]`) and why it does not apply. */
export interface Acknowledged {
  readonly id: string;
  readonly reason: string;
}

/** Acknowledges findings on `scope` and everything under it; each needs a reason a reviewer can check. */
export function acknowledge(scope: IConstruct | IConstruct[], ...rules: Acknowledged[]): void {
  for (const rule of rules) {
    if (rule.reason.trim().split(/\s+/).length < 5) {
      throw new Error(`acknowledging ${rule.id}: expected a reason of at least five words, got "${rule.reason}"`);
    }
  }
  for (const construct of Array.isArray(scope) ? scope : [scope]) {
    Validations.of(construct).acknowledge(...rules);
  }
}

/** Runs the AwsSolutions pack on `stage` (an App or a Stage). */
export function check(stage: Stage): void {
  Validations.of(stage).addPlugins(new AwsSolutionsChecks(stage, { verbose: true }));
}

/** How cdk-nag writes the ARN of `construct`'s resource in a finding: `<LogicalId.Arn>`. */
export function arnRef(construct: IConstruct): string {
  const resource = construct.node.defaultChild as CfnElement;
  return `<${Stack.of(resource).resolve(Stack.of(resource).getLogicalId(resource))}.Arn>`;
}

/** How cdk-nag writes an ARN built from the stack's region and account. */
export function arnPrefix(stack: Stack, service: string): string {
  const part = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<${pseudo}>` : value);
  return `arn:<AWS::Partition>:${service}:${part(stack.region, 'AWS::Region')}:${part(stack.account, 'AWS::AccountId')}`;
}
