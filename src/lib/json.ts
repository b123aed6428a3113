/** JSON values: what crosses a Durable Object RPC boundary and what storage keeps as JSON text. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };
