/**
 * X-Ray tracing, loaded only where it is on (`-c tracing=true` sets POWERTOOLS_TRACE_ENABLED):
 * importing the X-Ray SDK installs an async hook that taxes every promise of every request, and
 * its evaluation lengthens the cold start, so a Lambda without tracing never evaluates it. The
 * tracer packages are imported dynamically so that a bundle built without tracing can leave them
 * out altogether (about 100 KB of every bundle: `lib/function.ts`).
 */

/** The X-Ray tracer's middleware for every handler (`shared/middleware.ts`). */
export async function tracingMiddleware() {
  const [{ Tracer }, { captureLambdaHandler }] = await Promise.all([
    import('@aws-lambda-powertools/tracer'),
    import('@aws-lambda-powertools/tracer/middleware'),
  ]);
  const tracer = new Tracer({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'oc-gateway' });
  return captureLambdaHandler(tracer);
}
