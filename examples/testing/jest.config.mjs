// Runs examples/testing/jest.test.ts under jest, TypeScript ESM as it is in this repository:
//   NODE_OPTIONS=--experimental-vm-modules npx jest -c examples/testing/jest.config.mjs
// From the installed package (compiled JavaScript, imported as "celerity/testing") no transform is needed.
export default {
  rootDir: "../..",
  testMatch: ["<rootDir>/examples/testing/jest.test.ts"],
  extensionsToTreatAsEsm: [".ts"],
  transform: { "\\.ts$": ["babel-jest", { presets: [["@babel/preset-typescript", { allowDeclareFields: true }]] }] },
  testEnvironment: "node",
};
