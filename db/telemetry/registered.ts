/**
 * Whether an OpenTelemetry tracer provider may be registered, asked without loading
 * `@opentelemetry/api`: the API keeps whatever is registered (Deno's built-in OpenTelemetry
 * registers at start with `OTEL_DENO`, a program through the API) under one global symbol per
 * major version, and with nothing there every span would be dropped. When this says yes,
 * `telemetryActive` (db/telemetry/tracing.ts) tells a real provider from the API's no-op.
 */

/** The global the API (1.x) keeps its registrations under. */
const OTEL_API_GLOBAL = Symbol.for("opentelemetry.js.api.1");

/** False when no provider is registered; true when one may be. */
export function otelRegistered(): boolean {
  return (globalThis as Record<symbol, unknown>)[OTEL_API_GLOBAL] !== undefined;
}
