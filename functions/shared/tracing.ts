/**
 * X-Ray tracing, loaded only where it is on (`-c tracing=true` sets POWERTOOLS_TRACE_ENABLED):
 * importing the X-Ray SDK installs an async hook that taxes every promise of every request, and
 * its evaluation lengthens the cold start, so a Lambda without tracing never evaluates it.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';

export const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'oc-gateway' });
export const tracingMiddleware = () => captureLambdaHandler(tracer);
