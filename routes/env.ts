/**
 * The app's Hono environment: what the server passes each request (`Bindings`, read through
 * `getConnInfo`) and what the `/api` middleware leaves on the context for the routes
 * (`Variables`, routes/app.ts).
 */
import type { Principal } from "../db/tenants.ts";
import type { ServeInfo } from "./serve.ts";

export type AppEnv = {
  /** The connection, from `Deno.serve` or routes/serve.ts; absent under `app.request()`. */
  Bindings: Partial<ServeInfo>;
  Variables: {
    /** Set on every request (routes/request_id.ts). */
    requestId: string;
    /** The caller's address (routes/app.ts `clientIp`). */
    clientIp: string;
    /** The key's tenant and rights; absent on the public routes (read it with `principalOf`). */
    principal: Principal;
  };
};
