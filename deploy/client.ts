/**
 * A typed client of the Troupe API: paths, parameters, bodies and answers are checked against
 * `deploy/api_types.ts`, generated from `/api/v1/openapi.json` (`deno task client:generate`).
 *
 * @example
 * ```ts
 * import { troupeClient } from "./client.ts";
 * const api = troupeClient({ baseUrl: "http://localhost:8000", apiKey: "tr_..." });
 * const { data, error } = await api.GET("/api/v1/jobs/{id}", { params: { path: { id: "..." } } });
 * ```
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./api_types.ts";

export type { components, paths };
export type TroupeClient = Client<paths>;
export type ErrorBody = components["schemas"]["Error"];

export interface TroupeClientOptions {
  /** The server's origin, e.g. `http://localhost:8000`. */
  baseUrl: string;
  /** Sent as `X-API-Key`. */
  apiKey?: string;
  /** Another fetch (a proxy, or an app's `fetch` in tests). @default globalThis.fetch */
  fetch?: (request: Request) => Promise<Response>;
}

export function troupeClient({ baseUrl, apiKey, fetch }: TroupeClientOptions): TroupeClient {
  return createClient<paths>({
    baseUrl,
    ...(apiKey ? { headers: { "x-api-key": apiKey } } : {}),
    ...(fetch ? { fetch } : {}),
  });
}
