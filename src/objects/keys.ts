import { StatefulObject, type SchemaComponent } from "./base";

// PLACEHOLDER: replaced by the real implementation in this same change.
export class KeyManager extends StatefulObject {
  protected readonly source = "keys";
  protected override schema(): SchemaComponent {
    return { name: "keys", migrations: [] };
  }
}
