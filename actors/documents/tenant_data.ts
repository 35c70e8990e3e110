/** The stored documents' part of a tenant's deletion: each report or statement and its hold. */
import type { DocumentKind } from "./stored.ts";
import { dropDocument } from "./stored.ts";
import { drainIds, type TenantDataPart } from "../tenants/part.ts";

export const documentTenantData: TenantDataPart = {
  name: "documents",
  async deleteTenantData(ctx) {
    await drainIds(ctx, async () =>
      (await ctx.db.query<{ kind: DocumentKind; doc_key: string }>(
        `SELECT kind, doc_key FROM troupe_documents WHERE tenant_id = $1
          ORDER BY kind, doc_key LIMIT 100`,
        [ctx.tenantId],
      )).map((r) => JSON.stringify([r.kind, r.doc_key])), async (id) => {
      const [kind, key] = JSON.parse(id) as [DocumentKind, string];
      await ctx.step(async (tx) => {
        const [row] = await tx.query(
          `SELECT 1 FROM troupe_documents WHERE tenant_id = $1 AND kind = $2 AND doc_key = $3
             FOR UPDATE`,
          [ctx.tenantId, kind, key],
        );
        if (!row) return {};
        await dropDocument(tx, ctx.tenantId, kind, key);
        return { documents: 1 };
      });
    });
  },
};
