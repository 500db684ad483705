// What a package's README promises a new user: the packages to install, and the first example.

export interface ReadmeExample {
  /** The packages of the README's first `npm install` line. */
  install: string[]
  /** The first TypeScript block. */
  code: string
}

export const readmeExample = (readme: string): ReadmeExample => {
  const install = /^npm install ([^\n#]+)/m.exec(readme)?.[1]?.trim().split(/\s+/)
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!install || !code) throw new Error('the README has no npm install line or no ```ts example')
  return { install, code }
}
