/** The one middleware stack every Lambda gets: Powertools logger, metrics and (when on) the tracer. */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger, metrics } from './powertools.js';

/** EMF metrics are flushed only inside Lambda; the local host has no CloudWatch to read them. */
const inLambda = Boolean(process.env.AWS_LAMBDA_FUNCTION_NAME);

/** The X-Ray tracer, evaluated only when tracing is on (see tracing.ts). */
const tracing =
  inLambda && process.env.POWERTOOLS_TRACE_ENABLED === 'true'
    ? await (await import('./tracing.js')).tracingMiddleware()
    : undefined;

export function lambda<E, R>(fn: (event: E) => Promise<R>) {
  const stack = middy<E, R, Error, Context>();
  if (tracing) stack.use(tracing);
  stack.use(injectLambdaContext(logger, { resetKeys: true }));
  if (inLambda) stack.use(logMetrics(metrics, { captureColdStartMetric: true }));
  return stack.handler((event: E) => fn(event));
}
