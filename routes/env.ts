/** What the `/api` middleware leaves on the context for the routes (routes/app.ts). */
import type { Principal } from "../db/tenants.ts";

export type AppEnv = {
  Variables: {
    /** Set on every request (routes/request_id.ts). */
    requestId: string;
    /** The caller's address (routes/app.ts `clientIp`). */
    clientIp: string;
    /** The key's tenant and rights; absent on the public routes (read it with `principalOf`). */
    principal: Principal;
  };
};
