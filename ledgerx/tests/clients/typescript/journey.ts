// A first session with LedgerX through the generated TypeScript client: the types come
// from generated/schema.d.ts (openapi-typescript over the served schema), so a field the
// schema gets wrong is a `tsc --noEmit` error, and a response the schema does not describe
// fails at run time. Usage: node build/journey.js BASE_URL
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

declare const process: { argv: string[]; exit(code: number): never };

type Transaction = components["schemas"]["TransactionOutput"];

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`journey: ${what}`);
}

const baseUrl = process.argv[2];
check(baseUrl, "pass the server's base URL");
const email = `ts-${Date.now()}@example.com`;
const password = "analytical-engine-1843";

const anonymous = createClient<paths>({ baseUrl });
const registered = await anonymous.POST("/api/v1/auth/register", { body: { email, password, full_name: "Ada" } });
check(registered.response.status === 201 && registered.data?.email === email, "register");
check(registered.response.headers.get("Location") === "/api/v1/me", "register's Location");

const wrong = await anonymous.POST("/api/v1/auth/login", { body: { email, password: "not-the-password" } });
// The error body is typed: its `code` is the operation's enum.
const code: "validation_error" | "invalid_credentials" | undefined =
  wrong.error?.error.code === "invalid_credentials" ? wrong.error.error.code : undefined;
check(wrong.response.status === 401 && code === "invalid_credentials", "wrong password");

const login = await anonymous.POST("/api/v1/auth/login", { body: { email, password } });
check(login.data, "login");
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${login.data.access}` } });

const pin = await client.PUT("/api/v1/me/pin", { body: { pin: "4826", password } });
check(pin.response.status === 204, "PIN");

const main = await client.POST("/api/v1/accounts", { body: { currency: "USD", name: "main" } });
const savings = await client.POST("/api/v1/accounts", { body: { currency: "USD" } });  // name is optional
check(main.data && savings.data, "accounts");

const deposit = await client.POST("/api/v1/deposits", {
  params: { header: { "Idempotency-Key": `ts-deposit-${email}` } },
  body: { account: main.data.id, amount: 1050 },  // description and metadata are optional
});
check(deposit.response.status === 201 && deposit.data?.amount === 1050, "deposit");

const transfer = await client.POST("/api/v1/transfers", {
  params: { header: { "Idempotency-Key": `ts-transfer-${email}` } },
  body: { source_account: main.data.id, destination_account: savings.data.id, amount: 250, pin: "4826" },
});
check(transfer.data?.status === "committed", "transfer");

const seen: Transaction[] = [];
let cursor: string | undefined;
do {
  const page = await client.GET("/api/v1/transactions", { params: { query: { page_size: 1, cursor } } });
  check(page.data, "transactions page");
  seen.push(...page.data.results);
  cursor = page.data.next ? new URL(page.data.next).searchParams.get("cursor") ?? undefined : undefined;
} while (cursor);
check(seen.map((txn) => txn.type).join(",") === "transfer,deposit", "paged transactions");

const accounts = await client.GET("/api/v1/accounts", { params: { query: { page_size: 1 } } });
check(accounts.data?.results.length === 1 && accounts.data.next, "paged accounts");
const entries = await client.GET("/api/v1/accounts/{account_id}/entries", {
  params: { path: { account_id: main.data.id }, query: { page_size: 200 } },
});
check(entries.data?.results.map((line) => line.amount).join(",") === "-250,1050", "statement");
const balance = await client.GET("/api/v1/accounts/{account_id}", { params: { path: { account_id: main.data.id } } });
check(balance.data?.balance.available === 800, "balance");

const tooBig = await client.GET("/api/v1/transactions", { params: { query: { page_size: 201 } } });
check(tooBig.response.status === 400, "page_size past the maximum");
console.log("journey ok");
