import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { STACKS } from '../functions/shared/constants.js';
import { Data, type DataProps } from './data.js';

export interface OcDataStackProps extends StackProps, DataProps {}

/**
 * The stateful part: the table and its key. It changes rarely and is never replaced with the
 * app; deleting the app stack leaves every fact and chain entry in place.
 */
export class OcDataStack extends Stack {
  readonly data: Data;

  constructor(scope: Construct, id: string, props: OcDataStackProps = {}) {
    super(scope, id, { description: 'OpenClause gateway: table and key (stateful)', ...props });
    this.data = new Data(this, 'Data', { tableName: props.tableName });
    new CfnOutput(this, STACKS.outputs.tableName, {
      value: this.data.table.tableName,
      description: 'The single DynamoDB table',
    });
  }
}
