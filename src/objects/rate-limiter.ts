import { StatefulObject, type SchemaComponent } from "./base";

// PLACEHOLDER: replaced by the real implementation in this same change.
export class RateLimiter extends StatefulObject {
  protected readonly source = "rate_limiter";
  protected override schema(): SchemaComponent {
    return { name: "rate_limiter", migrations: [] };
  }
}
