/** One logger and one metrics object for every Lambda; module scope so they live across invocations. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';

// Outside Lambda (local host, CLI, tests) there is no CloudWatch to read EMF lines from stdout.
if (!process.env.AWS_LAMBDA_FUNCTION_NAME) process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'oc-gateway';

export const logger = new Logger({ serviceName });
export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'OpenClause',
});
