/**
 * Template connector Lambda (invoked by the executor with a `ConnectorRequest` payload). The
 * SDK's `lambdaHandler` (`functions/connectors/lambda.ts`) is the whole entry point: payload validation, Powertools context,
 * credentials read by name from the connector's secret (`OC_TEMPLATE_SECRET_ARN`).
 */
import { lambdaHandler } from '../connectors/lambda.js';
import { templateConnector } from '../connectors/template.js';

export const handler = lambdaHandler(templateConnector, {});
