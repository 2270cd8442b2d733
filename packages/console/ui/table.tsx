import type { ComponentChildren } from "preact";

/** A data table with a caption and column headers (scope=col); rows are the children. */
export function DataTable({
  caption,
  columns,
  children,
}: {
  caption: ComponentChildren;
  columns: readonly string[];
  children: ComponentChildren;
}) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col">{column}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
