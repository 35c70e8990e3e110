/** The dataset workload's part of a tenant's deletion: its datasets, their rows and chunks. */
import type { TenantDataPart } from "../tenants/part.ts";
import { drainIds } from "../tenants/part.ts";
import { deleteDataset } from "./store.ts";

/** Removes each of a tenant's datasets as `DELETE /datasets/:id` does, one transaction each. */
export const datasetTenantData: TenantDataPart = {
  name: "datasets",
  async deleteTenantData(ctx) {
    await drainIds(ctx, async () =>
      (await ctx.db.query<{ id: string }>(
        "SELECT id FROM troupe_datasets WHERE tenant_id = $1 ORDER BY id LIMIT 50",
        [ctx.tenantId],
      )).map((r) => r.id), async (id) => {
      await ctx.step(async (tx) => {
        const [d] = await tx.query<{ row_count: string | number | null; chunks: number }>(
          `SELECT row_count,
             (SELECT count(*)::int FROM troupe_dataset_chunks WHERE dataset_id = $1) AS chunks
           FROM troupe_datasets WHERE id = $1 AND tenant_id = $2 FOR UPDATE`,
          [id, ctx.tenantId],
        );
        if (!d) return {};
        await deleteDataset(tx, id, ctx.tenantId);
        return { datasets: 1, rows: Number(d.row_count ?? 0), chunks: d.chunks };
      });
    });
  },
};
