// The sandbox's local chain: chain id 1338 is what human-protocol-sdk calls "localhost".
module.exports = {
  networks: {
    hardhat: {
      chainId: 1338,
      mining: { auto: true },
      accounts: { count: 20 },
    },
  },
};
