/** A module that exports no app: a pool must refuse to start on it, saying so. */
export const notAnApp = { task: "nothing here" };
