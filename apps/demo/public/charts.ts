// The dashboard's charts (uPlot), loaded by the page only once the dashboard streams: the last five
// minutes of messages in and out, connections by transport, the busiest rooms, and each node's
// connections when there are several. The numbers above them stay as text for screen readers.
import uPlot from 'uplot'

/** One second of the server, summed over its nodes. */
export interface ChartPoint {
  /** Seconds since the epoch. */
  at: number
  messagesIn: number
  messagesOut: number
  ws: number
  sse: number
  /** Messages per second per room. */
  rooms: Record<string, number>
  /** Connections per node. */
  nodes: Record<string, number>
}

export interface Charts {
  push(point: ChartPoint): void
  destroy(): void
}

const windowSeconds = 300
const maxSeriesPerChart = 5
const palette = ['#3559e0', '#17753f', '#b3261e', '#8a5a00', '#6b3fa0']

interface ChartSpec {
  title: string
  /** The series of a point; undefined hides the chart (per node, with one node). */
  values(point: ChartPoint): Record<string, number>
  /** Series named after what the point holds, the busiest first (rooms, nodes). */
  dynamic: boolean
  /** Shown only when there is more than one series (per node). */
  onlyWhenSeveral?: boolean
}

const specs: ChartSpec[] = [
  {
    title: 'Messages/s',
    values: (p) => ({ in: p.messagesIn, out: p.messagesOut }),
    dynamic: false,
  },
  { title: 'Connections', values: (p) => ({ WebSocket: p.ws, SSE: p.sse }), dynamic: false },
  { title: 'Messages/s per room', values: (p) => p.rooms, dynamic: true },
  { title: 'Connections per node', values: (p) => p.nodes, dynamic: true, onlyWhenSeveral: true },
]

export const createCharts = (container: HTMLElement): Charts => {
  const points: ChartPoint[] = []
  const charts = specs.map((spec) => {
    // A canvas says nothing to a screen reader: the chart is an image labelled with its values.
    const figure = document.createElement('div')
    figure.className = 'chart'
    figure.setAttribute('role', 'img')
    const caption = document.createElement('div')
    caption.className = 'chart-title'
    caption.textContent = spec.title
    figure.append(caption)
    figure.hidden = true // until it has two seconds to draw
    container.append(figure)
    return { spec, figure, plot: undefined as uPlot | undefined, labels: [] as string[] }
  })

  const labelsOf = (spec: ChartSpec): string[] => {
    if (!spec.dynamic) return Object.keys(spec.values(points.at(-1)!))
    const totals = new Map<string, number>()
    for (const point of points)
      for (const [label, value] of Object.entries(spec.values(point)))
        totals.set(label, (totals.get(label) ?? 0) + value)
    return [...totals]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, maxSeriesPerChart)
      .map(([label]) => label)
      .sort()
  }

  const width = (): number => Math.max(160, container.clientWidth)

  const draw = (): void => {
    for (const chart of charts) {
      const labels = labelsOf(chart.spec)
      chart.figure.hidden =
        points.length < 2 || labels.length === 0 || (chart.spec.onlyWhenSeveral === true && labels.length < 2)
      const data: uPlot.AlignedData = [
        points.map((p) => p.at),
        ...labels.map((label) => points.map((p) => chart.spec.values(p)[label] ?? 0)),
      ]
      const last = points.at(-1)!
      chart.figure.setAttribute(
        'aria-label',
        `${chart.spec.title}, now: ${labels.map((l) => `${l} ${chart.spec.values(last)[l] ?? 0}`).join(', ') || 'none'}`,
      )
      if (chart.plot && labels.join('\n') === chart.labels.join('\n')) {
        chart.plot.setData(data)
        continue
      }
      // Other series than before (a room got busy, a node came): the chart is made again.
      chart.plot?.destroy()
      chart.labels = labels
      if (chart.figure.hidden) {
        chart.plot = undefined
        continue
      }
      chart.plot = new uPlot(
        {
          width: width(),
          height: 110,
          legend: { show: true, live: false },
          cursor: { show: false },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
          axes: [
            {
              size: 24,
              space: 60,
              font: '10px system-ui',
              ticks: { size: 3 },
              values: (_u, splits) =>
                splits.map((at) =>
                  new Date(at * 1000).toLocaleTimeString([], { minute: '2-digit', second: '2-digit' }),
                ),
            },
            { size: 32, font: '10px system-ui', ticks: { size: 3 } },
          ],
          series: [
            {},
            ...labels.map((label, i) => ({
              label,
              stroke: palette[i % palette.length]!,
              width: 1.5,
              points: { show: false },
            })),
          ],
        },
        data,
        chart.figure,
      )
    }
  }

  const resize = new ResizeObserver(() => {
    for (const chart of charts) chart.plot?.setSize({ width: width(), height: 110 })
  })
  resize.observe(container)

  return {
    push(point) {
      points.push(point)
      while (points.length > 0 && point.at - points[0]!.at > windowSeconds) points.shift()
      draw()
    },
    destroy() {
      resize.disconnect()
      for (const chart of charts) chart.plot?.destroy()
      container.replaceChildren()
    },
  }
}
