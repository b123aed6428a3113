import { StatefulObject, type SchemaComponent } from "./base";

// PLACEHOLDER: replaced by the real implementation in this same change.
export class TokenFamily extends StatefulObject {
  protected readonly source = "token_family";
  protected override schema(): SchemaComponent {
    return { name: "token_family", migrations: [] };
  }
}
