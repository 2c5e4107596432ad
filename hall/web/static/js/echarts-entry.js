// The trimmed ECharts build of the hall: only the charts and components the quality pages use.
// Bundled by scripts/build-assets (esbuild, IIFE, global `echarts`) into static/vendor/echarts/echarts.min.js.
import * as echarts from 'echarts/core';
import { BarChart, LineChart, RadarChart } from 'echarts/charts';
import {
  GridComponent, LegendComponent, MarkLineComponent, TitleComponent, TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, LineChart, RadarChart, GridComponent, LegendComponent, MarkLineComponent,
  TitleComponent, TooltipComponent, CanvasRenderer]);

export const { init, getInstanceByDom } = echarts;
