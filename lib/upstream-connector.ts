/**
 * The generic MCP-client connector's Lambda (issue 25: upstream MCP servers). Executors invoke
 * it like the native connectors (`Connectors.allowInvoke`), under the name `mcp-upstream`.
 *
 * It reads the tenants' upstream catalog (table, read only) and the upstreams' credentials:
 * Secrets Manager secrets and SSM parameters under the upstream prefixes only, never the native
 * connectors' secrets. With `-c upstreamVpc=<vpc-id>/<subnet-id>,<subnet-id>` it runs in those
 * (private, with a route out for public upstreams) subnets with its own security group, and
 * private addresses are allowed for upstreams (`OC_UPSTREAM_ALLOW_PRIVATE`); the NAT gateway or
 * endpoints that route needs are the operator's, priced in `bench/cost.ts`.
 */
import { Arn, ArnFormat, Duration, Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { UPSTREAM_PARAMETER_PREFIX, UPSTREAM_SECRET_PREFIX } from '../functions/core/upstream-types.js';
import { ENV } from '../functions/shared/constants.js';
import { OcFunction } from './function.js';

/** `-c upstreamVpc=<vpc-id>/<subnet-id>,<subnet-id>`, parsed. */
export interface UpstreamVpc {
  readonly vpcId: string;
  readonly subnetIds: readonly string[];
}

/** Parses the `upstreamVpc` context value; throws a message naming the expected form. */
export function parseUpstreamVpc(raw: string | undefined): UpstreamVpc | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const match = /^(vpc-[0-9a-f]+)\/(subnet-[0-9a-f]+(?:,subnet-[0-9a-f]+)*)$/.exec(raw.trim());
  if (!match)
    throw new Error(`context upstreamVpc must be <vpc-id>/<subnet-id>[,<subnet-id>...], got "${raw}"`);
  return { vpcId: match[1]!, subnetIds: match[2]!.split(',') };
}

export interface UpstreamConnectorProps {
  readonly table: ITable;
  readonly timeout: Duration;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /** @default - not in a VPC: public https upstreams only */
  readonly vpc?: UpstreamVpc;
}

export class UpstreamConnector extends Construct {
  readonly function: OcFunction;

  constructor(scope: Construct, id: string, props: UpstreamConnectorProps) {
    super(scope, id);
    const vpc = props.vpc
      ? Vpc.fromVpcAttributes(this, 'Vpc', {
          vpcId: props.vpc.vpcId,
          availabilityZones: Stack.of(this).availabilityZones.slice(0, props.vpc.subnetIds.length),
        })
      : undefined;
    const placement =
      vpc && props.vpc
        ? {
            vpc,
            subnets: props.vpc.subnetIds.map((subnetId, i) =>
              Subnet.fromSubnetId(this, `Subnet${i}`, subnetId),
            ),
            securityGroups: [
              new SecurityGroup(this, 'SecurityGroup', {
                vpc,
                description: 'OpenClause connector-mcp-upstream: outbound to upstream MCP servers only',
                allowAllOutbound: true,
              }),
            ],
          }
        : undefined;
    this.function = new OcFunction(this, 'McpUpstream', {
      handlerName: 'connector-mcp-upstream',
      invocation: 'lambda-sync',
      timeout: props.timeout,
      logRetention: props.logRetention,
      vpc: placement,
      environment: placement ? { [ENV.upstreamAllowPrivate]: 'true' } : {},
    }).bindTable(props.table, 'read');

    // The pre-call drift check records what it finds: the drifted tool disabled and its drift
    // item (the tenants' UPSTREAM partitions), with the drift's own `upstream.drift` fact (an event
    // partition of its own, conditional on not existing; the sequencer seals it). PutItem only,
    // in those partitions only: never an approval, a grant, an execution or a chain item.
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['dynamodb:PutItem'],
        resources: [props.table.tableArn],
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['T#*#UPSTREAM', 'T#*#EVT#*'] },
        },
      }),
    );
    if (props.table.encryptionKey)
      this.function.addToRolePolicy(
        new PolicyStatement({
          actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [props.table.encryptionKey.keyArn],
        }),
      );

    const stack = Stack.of(this);
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          Arn.format(
            {
              service: 'secretsmanager',
              resource: 'secret',
              resourceName: `${UPSTREAM_SECRET_PREFIX}*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            },
            stack,
          ),
        ],
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['ssm:GetParameter'],
        resources: [
          Arn.format(
            { service: 'ssm', resource: 'parameter', resourceName: `${UPSTREAM_PARAMETER_PREFIX.slice(1)}*` },
            stack,
          ),
        ],
      }),
    );
    Validations.of(this.function.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:openclause-upstream/*]',
      reason:
        "Upstream credentials are registered by operators per tenant at run time (oc upstream), so their names are not known at deploy; the grant is limited to the upstream prefix, and the resolver reads only the calling tenant's path below it.",
    });
    Validations.of(this.function.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/openclause-upstream/*]',
      reason:
        "Upstream credentials may be SSM parameters, registered per tenant at run time; the grant is limited to the upstream prefix, and the resolver reads only the calling tenant's path below it.",
    });
    if (placement)
      Validations.of(this.function.role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          'A Lambda in a VPC needs to manage its network interfaces; the AWS managed policy is what Lambda documents for it.',
      });
  }
}
