import { serve } from '@flumen/core'
import { buildApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const server = await serve(buildApp(), { port, hostname: process.env.HOST, handleSignals: true })
console.log(`Flumen Rooms listening on ${server.url}`)
