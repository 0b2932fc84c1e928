// Runs examples/testing/jest.test.ts under jest, TypeScript ESM as it is in this repository:
//   NODE_OPTIONS=--experimental-vm-modules npx jest -c examples/testing/jest.config.mjs
// From an installed package (compiled to JavaScript) no transform or module map is needed.
export default {
  rootDir: "../..",
  testMatch: ["<rootDir>/examples/testing/jest.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  transform: { "\\.ts$": ["babel-jest", { presets: [["@babel/preset-typescript", { allowDeclareFields: true }]] }] },
  moduleNameMapper: { "^celerity/testing$": "<rootDir>/src/testing.ts", "^celerity$": "<rootDir>/src/index.ts" },
  testEnvironment: "node",
};
