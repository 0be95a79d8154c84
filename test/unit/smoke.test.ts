describe('env', () => {
  it('has emulator endpoints', () => {
    expect(process.env.OC_TEST_DYNAMODB_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
